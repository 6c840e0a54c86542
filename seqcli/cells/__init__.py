"""Recurrent cells (rnn, lstm, gru) and the layer that stacks, reverses and masks them."""

from seqcli.cells.layer import Recurrent

__all__ = ["Recurrent"]
