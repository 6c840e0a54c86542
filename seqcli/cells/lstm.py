"""Long short-term memory (Hochreiter & Schmidhuber, 1997), as PyTorch's nn.LSTM computes it.

The cell state c_t is updated additively (c_t = f * c_{t-1} + i * g), so the gradient along
it is scaled by the forget gate rather than squashed by a tanh at every step: this is what
lets an LSTM carry information, and gradient, across long distances.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqcli.api import Cell
from seqcli.cells.weights import add_weights


class LSTM(Cell):
    """LSTM cell; runs on the fused nn.LSTM kernel when built by seqcli."""

    num_states = 2
    gates = 4
    forget_gate = 1  # gates i, f, g, o

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        add_weights(self, 4, input_size, hidden_size)

    def project(self, x):
        return F.linear(x, self.weight_ih, self.bias_ih)  # (T, B, 4H), gates i, f, g, o

    def step(self, u, state):
        h, c = state
        i, f, g, o = (u + F.linear(h, self.weight_hh, self.bias_hh)).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    @classmethod
    def fused_kernel(cls, **options):
        return "lstm"
