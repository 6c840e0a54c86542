"""Datasets of separate examples (pairs, labelled sequences, tagged sentences, windows).

`FileDataset` handles where the examples come from: one file carved into splits by
fraction (shuffled with `seed`), or separate train/valid/test files. A subclass says how to
read one file, which fields the training split defines, and how to encode an example.
"""

from __future__ import annotations

from typing import Annotated, Any

from seqcli.api import ConfigError, Data, DataError, Dataset, Range, Seed
from seqcli.data.batching import order
from seqcli.schema import File

FilePath = Annotated[str, File()]
Fraction = Annotated[float, Range(0, 0.5)]
Size = Annotated[int, Range(1, 10**9)]


class FileDataset(Dataset):
    """Examples from `path` (split by fraction) or from `train`/`valid`/`test` files."""

    shuffle_before_carving = True  # series keep time order instead

    def __init__(self, path: FilePath | None = None, train: FilePath | None = None, valid: FilePath | None = None,
                 test: FilePath | None = None, valid_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1,
                 valid_size: Size | None = None, test_size: Size | None = None, seed: Seed = 0):
        check_sources(path, train, valid, test, valid_fraction, valid_size, test_size)
        if not (path or train):
            raise ConfigError("path", "give the data: path (one file) or train/valid/test files")
        self.path, self.train, self.valid, self.test = path, train, valid, test
        self.valid_fraction, self.test_fraction, self.seed = valid_fraction, test_fraction, seed
        self.valid_size, self.test_size = valid_size, test_size

    # -- what a subclass writes ----------------------------------------------------------

    def read(self, path: str) -> list[Any]:
        """Raw examples of one file (plain Python values)."""
        raise NotImplementedError

    def make_fields(self, train: list[Any]) -> dict:
        raise NotImplementedError

    def encode(self, raw: Any, fields: dict) -> dict:
        """One raw example -> a dict of tensors."""
        raise NotImplementedError

    # -- the rest is shared ----------------------------------------------------------------

    def items_for(self, examples: int) -> int:
        """How many of `read`'s items make `examples` examples (series: rows for windows)."""
        return examples

    def raw_splits(self) -> tuple[dict[str, list], str]:
        valid = self.items_for(self.valid_size) if self.valid_size else None
        test = self.items_for(self.test_size) if self.test_size else None
        if self.path:
            return carve(self._read(self.path), self.valid_fraction, self.test_fraction, self.seed,
                         self.path, self.shuffle_before_carving, valid, test), self.path
        splits = {"train": self._read(self.train)}
        if self.valid:
            splits["valid"] = self._read(self.valid)
        else:
            splits.update(carve(splits["train"], self.valid_fraction, 0.0, self.seed, self.train,
                                self.shuffle_before_carving, valid))
        if self.test:
            splits["test"] = self._read(self.test)
        return splits, ", ".join(p for p in (self.train, self.valid, self.test) if p)

    def load(self) -> Data:
        return self.load_with(None)

    def load_with(self, fields: dict | None) -> Data:
        raw, source = self.raw_splits()
        fields = fields if fields is not None else self.make_fields(raw["train"])
        splits = {k: [self.encode(r, fields) for r in v] for k, v in raw.items()}
        info = {"source": source, **{f"{k}_examples": len(v) for k, v in splits.items()}}
        return Data(splits=splits, fields=fields, info=info)

    def load_file(self, path: str, fields: dict) -> list[dict]:
        return [self.encode(r, fields) for r in self._read(path)]

    def _read(self, path: str) -> list:
        examples = self.read(path)
        if not examples:
            raise DataError(f"{path}: no examples in this file")
        return examples


def check_sources(path, train, valid, test, valid_fraction: float, valid_size: int | None = None,
                  test_size: int | None = None) -> None:
    """One file split by fraction or size (`path`), or separate files (`train`, optional
    `valid` and `test`), never both; without a valid file, a validation split must be carved."""
    if path and train:
        raise ConfigError("train", "give either path (one file, split by fraction) or train/valid/test files, not both")
    if (valid or test) and not train:
        raise ConfigError("valid" if valid else "test", "separate valid/test files need a train file too")
    if not valid and valid_fraction == 0 and not valid_size:
        raise ConfigError("valid_fraction", "must be > 0 when there is no valid file (training needs a validation split)")
    if valid and valid_size:
        raise ConfigError("valid_size", "carves a validation split from the data; there is a valid file already")
    if test_size and (test or train):
        raise ConfigError("test_size", "carves a test split from `path`; with separate files, give a test file")


def carve(examples: list, valid_fraction: float, test_fraction: float, seed: int, source: str,
          shuffle: bool = True, valid_size: int | None = None, test_size: int | None = None) -> dict[str, list]:
    """Split examples into train/valid(/test): shuffled with `seed`, or in order (the last
    ones are test, those before them valid). A size, where given, overrides its fraction."""
    idx = order(len(examples), seed, 0, shuffle)
    n = len(examples)
    n_valid, n_test = split_counts(n, valid_fraction, test_fraction, valid_size, test_size, source, "examples")
    parts = {"train": idx[: n - n_valid - n_test], "valid": idx[n - n_valid - n_test : n - n_test]}
    if n_test or (test_size is None and test_fraction):
        parts["test"] = idx[n - n_test :]
    for name, part in parts.items():
        if not part:
            raise DataError(f"{source}: too few examples ({n}) to carve a non-empty {name} split; "
                            f"use more data or give separate files")
    return {k: [examples[i] for i in v] for k, v in parts.items()}


def split_counts(n: int, valid_fraction: float, test_fraction: float, valid_size: int | None,
                 test_size: int | None, source: str, unit: str) -> tuple[int, int]:
    """How many of `n` items go to valid and to test: a size where given, else a fraction."""
    n_test = test_size if test_size is not None else round(n * test_fraction)
    n_valid = valid_size if valid_size is not None else round(n * valid_fraction)
    if n_valid + n_test >= n:
        raise DataError(f"{source}: {n} {unit}, too few to carve {n_valid} for valid and {n_test} for test "
                        f"and keep some for training")
    return n_valid, n_test
