"""Reading an input sequence: token embeddings or scaled numeric vectors, then a recurrent stack."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqcli.api import CellSpec
from seqcli.nn.pretrained import VocabEmbedding
from seqcli.nn.recurrent import Recurrent
from seqcli.vocab import Numeric, Vocab


class Scale(nn.Module):
    """(x - mean) / std with the training split's statistics, kept in the checkpoint."""

    def __init__(self, field: Numeric):
        super().__init__()
        self.register_buffer("mean", torch.tensor(field.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(field.std, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean


def input_layer(field, embedding_size: int) -> tuple[nn.Module, int]:
    """The layer that turns raw inputs into vectors, and its output size."""
    if isinstance(field, Vocab):
        return VocabEmbedding(field, embedding_size), embedding_size
    if isinstance(field, Numeric):
        return Scale(field), field.dim
    raise TypeError(f"cannot read a {type(field).__name__} field as a sequence")


class Encoder(nn.Module):
    """inputs (T, B) ids or (T, B, D) values, lengths (B,) -> outputs (T, B, D*H), final state."""

    def __init__(self, field, cell: CellSpec, embedding_size: int, hidden_size: int, num_layers: int,
                 dropout: float, bidirectional: bool, weight_drop: float = 0.0):
        super().__init__()
        self.inputs, size = input_layer(field, embedding_size)
        self.drop = nn.Dropout(dropout)
        self.rnn = Recurrent(cell, size, hidden_size, num_layers, dropout, bidirectional, weight_drop=weight_drop)
        self.output_size = self.rnn.output_size

    def forward(self, x: Tensor, lengths: Tensor):
        return self.rnn(self.drop(self.inputs(x)), lengths=lengths)

    def summary(self, state) -> Tensor:
        """The last layer's final hidden state, both directions concatenated: (B, D*H)."""
        h = state[0][-self.rnn.num_directions :]  # (D, B, H)
        return torch.cat(list(h), dim=-1)
