"""Shuffled batches of examples, padded time-major, with lengths for masking."""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE = -100  # target id that losses skip (padding)


def order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """A permutation of range(n) fixed by (seed, epoch)."""
    if not shuffle:
        return list(range(n))
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def batches(examples: list, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True):
    idx = order(len(examples), seed, epoch, shuffle)
    for i in range(0, len(idx), batch_size):
        yield [examples[j] for j in idx[i : i + batch_size]]


def pad(seqs: list[Tensor], value: float | int = 0) -> tuple[Tensor, Tensor]:
    """Sequences (T_i, ...) -> (T, B, ...) padded with `value`, and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs])
    return torch.nn.utils.rnn.pad_sequence(seqs, padding_value=value), lengths


def mask(lengths: Tensor, steps: int) -> Tensor:
    """(T, B) True where a step is inside its sequence."""
    return torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]
