"""Padding, masks and reversal for time-major batches of sequences of different lengths."""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE = -100  # target id that losses skip (padding)


def pad(seqs: list[Tensor], value: float | int = 0) -> tuple[Tensor, Tensor]:
    """Sequences (T_i, ...) -> (T, B, ...) padded with `value`, and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs])
    return torch.nn.utils.rnn.pad_sequence(seqs, padding_value=value), lengths


def mask(lengths: Tensor, steps: int) -> Tensor:
    """(T, B) True where a step is inside its sequence."""
    return torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, ...) within its own length; padding stays at the end."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device)[:, None]  # (T, 1)
    n = lengths.to(x.device)[None, :]  # (1, B)
    index = torch.where(t < n, n - 1 - t, t)  # (T, B)
    index = index.view(T, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)
