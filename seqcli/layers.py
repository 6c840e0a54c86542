"""Stable building blocks a task plugin wires into its model.

    from seqcli.layers import Encoder, Recurrent, pad

`Recurrent(cell_spec, input_size, hidden_size, num_layers, dropout, bidirectional)` runs any
cell (a recipe's `CellSpec`), stacked and optionally bidirectional, masking padded steps
(`lengths`) and taking the fused kernel where the cell names one; `.step(x_t, state)` runs one
time step of a unidirectional stack (for sampling); `locked_dropout=` (one mask per sequence
between layers) and `weight_drop=` (DropConnect on the recurrent weights, on the fused kernel)
are AWD-LSTM's regularisers, for any task. For `Task.export`: `traceable(model)` is a copy of a model whose
recurrent stacks exporters can trace over any input length, `sequence_inputs(field)` example
inputs (x, lengths) of a graph that reads sequences, `states_of(rnn)` zero initial states.
`Encoder(field, cell_spec, ...)` adds the
input layer for a `Vocab` (embedding) or `Numeric` field (scaled by the training statistics).
`pad` and `mask` turn variable-length sequences into time-major padded batches. All tensors
are time-major: (T, B, ...).
"""

from seqcli.nn.recurrent import Recurrent
from seqcli.nn.functional import mask, pad
from seqcli.nn.encoder import Encoder, Scale
from seqcli.nn.export import sequence_inputs, states_of, traceable

__all__ = ["Encoder", "Recurrent", "Scale", "mask", "pad", "sequence_inputs", "states_of", "traceable"]
