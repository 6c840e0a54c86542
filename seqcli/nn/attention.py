"""Attention over encoder outputs: dot and general (Luong et al., 2015), additive (Bahdanau
et al., 2015). Keys are projected once per batch; each decoder step only scores."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Kind = Literal["none", "dot", "general", "additive"]


class Attention(nn.Module):
    def __init__(self, kind: str, query_size: int, key_size: int):
        super().__init__()
        self.kind = kind
        if kind == "dot":
            # a dot product needs equal sizes: a bidirectional encoder's keys are projected
            self.key_proj = nn.Linear(key_size, query_size, bias=False) if key_size != query_size else nn.Identity()
        elif kind == "general":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)
        elif kind == "additive":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)
            self.query_proj = nn.Linear(query_size, query_size)
            self.v = nn.Linear(query_size, 1, bias=False)
        else:
            raise ValueError(f"unknown attention {kind!r}")

    def keys(self, memory: Tensor) -> Tensor:
        """memory (S, B, K) -> projected keys (S, B, Q), computed once per batch."""
        return self.key_proj(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, Q), keys (S, B, Q), memory (S, B, K), mask (S, B) -> context (B, K), weights (B, S)."""
        if self.kind == "additive":
            scores = self.v(torch.tanh(keys + self.query_proj(query))).squeeze(-1)  # (S, B)
        else:
            scores = (keys * query).sum(-1)  # (S, B)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(0)  # over source positions
        context = (weights.unsqueeze(-1) * memory).sum(0)  # (B, K)
        return context, weights.t()
