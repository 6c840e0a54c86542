"""minGRU (Feng et al., 2024, "Were RNNs All We Needed?") as a seqcli cell plugin.

    z_t  = sigmoid(W_z x_t)            the update gate sees only the input...
    h~_t = g(W_h x_t)                  ...and so does the candidate state,
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

Neither gate depends on h_{t-1}, so the recurrence is linear in h: h_t = a_t h_{t-1} + b_t.
Training runs it for the whole sequence at once as a parallel scan in log space (Heinsen,
2023): log h_t = A_t + logcumsumexp(log b_s - A_s), A_t = sum of log a up to t. g keeps the
candidate positive so that its logarithm exists: g(x) = x + 0.5 for x >= 0, sigmoid(x) below.
Sampling uses `step`, one token at a time.

Which path trains is the `parallel` option: `auto` (the default) takes the scan on a GPU and
the step loop on a CPU, where the loop is faster: on 2 CPU cores, a 2-layer, 256-unit layer
over 64 x 128 steps took 0.16 s (loop) against 0.44 s (scan) per forward and backward,
logcumsumexp alone 0.11 s.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seqcli.api import Cell

__all__ = ["MinGRU"]


def g(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


class MinGRU(Cell):
    """A minimal GRU; `scan` is its parallel training path."""

    api_version = "1.4"

    def __init__(self, input_size: int, hidden_size: int, parallel: Literal["auto", "always", "never"] = "auto"):
        super().__init__(input_size, hidden_size)
        self.parallel = parallel
        self.linear = nn.Linear(input_size, 2 * hidden_size)  # gate and candidate, from the input alone

    def project(self, x):
        return self.linear(x)  # (T, B, 2H)

    def step(self, u, state):
        k, candidate = u.chunk(2, -1)
        z = torch.sigmoid(k)
        return ((1 - z) * state[0] + z * g(candidate),)

    def scan(self, u, state, mask):
        if self.parallel == "never" or (self.parallel == "auto" and not u.is_cuda):
            return NotImplemented  # seqcli runs the step loop
        k, candidate = u.chunk(2, -1)  # (T, B, H) each
        log_a = -F.softplus(k)  # log(1 - z)
        log_b = -F.softplus(-k) + log_g(candidate)  # log(z * g(candidate))
        if mask is not None:  # padded steps: a = 1, b = 0, the state passes through unchanged
            log_a = log_a.masked_fill(~mask, 0.0)
            log_b = log_b.masked_fill(~mask, float("-inf"))
        log_h0 = torch.log(state[0].clamp_min(1e-30)).unsqueeze(0)  # (1, B, H); h stays positive
        a_star = F.pad(log_a.cumsum(0), (0, 0, 0, 0, 1, 0))  # (T+1, B, H), 0 before the first step
        log_h = a_star + torch.logcumsumexp(torch.cat([log_h0, log_b]) - a_star, dim=0)
        h = log_h[1:].exp()
        return h, (h[-1],)
