"""Shuffled batches of examples (padded with `seqcli.nn.functional.pad`)."""

from __future__ import annotations

import torch

from seqcli.nn.functional import IGNORE, mask, pad  # noqa: F401 - tasks take them from here too


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
