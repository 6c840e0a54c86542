"""The built-in recurrent cells (rnn, lstm, gru): implementations of the cell contract.

The layer that stacks, reverses and masks them is `seqcli.nn.recurrent.Recurrent`
(`seqcli.layers.Recurrent`)."""
