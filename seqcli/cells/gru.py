"""Gated recurrent unit (Cho et al., 2014), as PyTorch's nn.GRU computes it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqcli.api import Cell
from seqcli.cells.init import uniform_init


class GRU(Cell):
    """GRU cell; runs on the fused nn.GRU kernel when built by seqcli."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.weight_ih = torch.nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = torch.nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = torch.nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = torch.nn.Parameter(torch.empty(3 * hidden_size))
        uniform_init(self, hidden_size)

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
