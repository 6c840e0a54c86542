"""Dropout variants of AWD-LSTM (Merity et al., 2017), active only in training."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x (T, B, D) with one dropout mask per sequence, the same at every time step
    (variational dropout, Gal & Ghahramani, 2016)."""
    if not training or not p:
        return x
    mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1 - p)
    return x * mask / (1 - p)


def embedding_dropout(embed: nn.Embedding, tokens: Tensor, p: float, training: bool) -> Tensor:
    """Look `tokens` up with whole words dropped: each row of the embedding is zeroed with
    probability p for the batch (every occurrence of a word alike), the rest scaled by 1/(1-p)."""
    if not training or not p:
        return embed(tokens)
    weight = embed.weight
    mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
    return F.embedding(tokens, weight * mask, embed.padding_idx)
