"""`dataset.folds: K` and `dataset.fold: I`: K-fold cross-validation over any dataset whose
splits are lists of examples. The training and validation examples are pooled and dealt
into K folds in one fixed shuffled order (the same for every run, seed and recipe of the
same data); fold I validates on the I-th and trains on the others. The test split is left
as it is."""

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
    --folds K`, every one in turn)."""


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
    if len(pool) < 2 * k:
        raise DataError(f"dataset.folds: {len(pool)} training and validation examples cannot make {k} folds "
                        f"of 2 or more")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(SHUFFLE_SEED)).tolist()
    held = set(order[fold - 1::k])  # every k-th of the shuffled order: fold sizes differ by at most 1
    splits = {**data.splits, "train": [x for i, x in enumerate(pool) if i not in held],
              "valid": [x for i, x in enumerate(pool) if i in held]}
    sizes = {f"{name}_examples": len(splits[name]) for name in ("train", "valid") if f"{name}_examples" in data.info}
    return replace(data, splits=splits, info={**data.info, **sizes, "fold": f"{fold} of {k}"})
