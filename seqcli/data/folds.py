"""`dataset.folds: K` and `dataset.fold: I`: K-fold cross-validation over any dataset whose
splits are lists of examples. The training and validation examples are pooled. Separate
examples are dealt into K folds in one fixed shuffled order (the same for every run, seed
and recipe of the same data); fold I validates on the I-th and trains on the others.
Ordered examples (`Data.ordered`: windows of a series) are never shuffled, since a model
trained on later windows would validate on the past: the pool is cut in time into K + 1
blocks, and fold I validates on block I + 1 and trains on blocks 1 to I, less `Data.gap`
examples before the validation block (forward chaining, as scikit-learn's TimeSeriesSplit).
The test split is left as it is."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import torch

from seqcli.api import Data
from seqcli.errors import DataError
from seqcli.schema import Range

SHUFFLE_SEED = 0  # one dealing of the examples, whatever the run's train.seed


def folds(folds: Annotated[int, Range(2, 100)], fold: Annotated[int, Range(1, 100)] | None = None) -> None:
    """The recipe keys: how many folds, and which one this run validates on (with `seqcli run
    --folds K`, every one in turn).

    `folds`: cross-validation: the training and validation examples cut into this many folds
    (forward-chaining for ordered data such as a series: a fold validates on what follows it).

    `fold`: the fold this run validates on, 1 to folds."""


def check(spec: dict) -> str | None:
    """What is wrong with the folds a recipe asks for, or None."""
    if spec.get("fold") is not None and spec["fold"] > spec["folds"]:
        return f"dataset.fold: must be 1 to dataset.folds ({spec['folds']}), got {spec['fold']}"
    return None


def deal(data: Data, k: int, fold: int, dataset: str) -> Data:
    """The data with fold `fold` of `k` as its 'valid' split and the rest of 'train' and
    'valid' as its 'train' split."""
    train, valid = data.splits.get("train"), data.splits.get("valid")
    if not isinstance(train, list) or not isinstance(valid, list):
        raise DataError(f"dataset.folds: the {dataset} dataset's splits are not lists of examples (a language "
                        f"model's text is one stream); cross-validation needs separate examples")
    pool = train + valid
    held = (forward(len(pool), k, fold, data.gap) if data.ordered else
            set(torch.randperm(len(pool), generator=torch.Generator().manual_seed(SHUFFLE_SEED)).tolist()[fold - 1::k]))
    trained = range(min(held) - data.gap) if data.ordered else (i for i in range(len(pool)) if i not in held)
    splits = {**data.splits, "train": [pool[i] for i in trained], "valid": [pool[i] for i in sorted(held)]}
    sizes = {f"{name}_examples": len(splits[name]) for name in ("train", "valid") if f"{name}_examples" in data.info}
    return replace(data, splits=splits, info={**data.info, **sizes, "fold": f"{fold} of {k}" + (", forward-chaining" if data.ordered else "")})


def forward(n: int, k: int, fold: int, gap: int) -> range:
    """The positions fold `fold` of `k` validates on, of `n` ordered examples: the (fold+1)-th
    of k + 1 blocks in time (the first block takes the remainder, so each fold trains on at
    least as much as it validates on)."""
    block = n // (k + 1)
    if block < 2 or n - k * block - gap < 2:
        raise DataError(f"dataset.folds: {n} ordered training and validation examples cannot make {k} "
                        f"forward-chaining folds (each validates on a block of 2 or more after 2 or more it trains "
                        f"on{f', {gap} left out between them' if gap else ''}); use fewer folds")
    start = n - (k - fold + 1) * block
    return range(start, start + block)
