"""The vanilla (Elman) recurrent cell: h_t = act(W_ih x_t + W_hh h_{t-1} + b).

Its gradient through time is a product of W_hh and the activation's derivative at every
step, so over long distances it vanishes (or explodes): see `seqcli gradflow`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from seqcli.api import Cell
from seqcli.cells.weights import add_weights


class RNN(Cell):
    """Elman RNN cell with a tanh or relu activation; runs on the fused nn.RNN kernel."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: Literal["tanh", "relu"] = "tanh"):
        """`nonlinearity`: the activation of the new state, tanh or relu."""
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity
        add_weights(self, 1, input_size, hidden_size)

    def project(self, x):
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step(self, u, state):
        pre = u + F.linear(state[0], self.weight_hh, self.bias_hh)
        return (torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre),)

    @classmethod
    def fused_kernel(cls, nonlinearity: str = "tanh", **options):
        return f"rnn_{nonlinearity}"
