"""Gated recurrent unit (Cho et al., 2014), as PyTorch's nn.GRU computes it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqcli.api import Cell
from seqcli.cells.weights import add_weights


class GRU(Cell):
    """GRU cell; runs on the fused nn.GRU kernel when built by seqcli."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        add_weights(self, 3, input_size, hidden_size)

    def project(self, x):
        return F.linear(x, self.weight_ih, self.bias_ih)  # (T, B, 3H), gates r, z, n

    def step(self, u, state):
        (h,) = state
        ur, uz, un = u.chunk(3, -1)
        hr, hz, hn = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, -1)
        r = torch.sigmoid(ur + hr)
        z = torch.sigmoid(uz + hz)
        n = torch.tanh(un + r * hn)
        return ((1 - z) * n + z * h,)

    @classmethod
    def fused_kernel(cls, **options):
        return "gru"
