"""Dataset `series`: numeric time series from CSV, cut into input windows and horizons."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from typing import Annotated

import numpy as np
import torch

from seqcli.api import ConfigError, Data, DataError, Range
from seqcli import vocab as V
from seqcli.data.examples import FileDataset
from seqcli.data.readers import text_lines

Steps = Annotated[int, Range(1, 100_000)]


FLOAT32_MAX = 3.4028234663852886e38  # series are trained in float32


class SeriesDataset(FileDataset):
    """A CSV with a header and one or more numeric columns, in time order. Each example is
    `window` consecutive rows of `columns` and the next `horizon` rows of `target_columns`.
    One file is split in time (the last rows are test, those before them valid), never
    shuffled, and windows never cross a split boundary."""

    shuffle_before_carving = False

    def __init__(self, columns: list[str] | None = None, target_columns: list[str] | None = None,
                 window: Steps = 24, horizon: Steps = 1, stride: Steps = 1, **options):
        super().__init__(**options)
        if columns is not None and not columns:
            raise ConfigError("columns", "name at least one column (or leave it out for all of them)")
        self.columns, self.target_columns = columns, target_columns
        self.window, self.horizon, self.stride = window, horizon, stride

    def items_for(self, examples: int) -> int:
        """Rows holding `examples` windows (sizes of series splits count windows, not rows)."""
        return self.window + self.horizon + (examples - 1) * self.stride

    def read(self, path: str) -> list[list[float]]:
        lines = text_lines(path)
        reader = csv.reader(lines)
        header = [h.strip() for h in next(reader, [])]
        wanted = list(dict.fromkeys((self.columns or []) + (self.target_columns or [])))
        for name in wanted:
            if name not in header:
                raise DataError(f"{path}:1: no column '{name}' in the header ({', '.join(header)})")
        if getattr(self, "_header", header) != header:
            raise DataError(f"{path}:1: the header differs from the training file's ({', '.join(self._header)})")
        self._header = header
        rows = []
        for n, record in enumerate(reader, 2):
            if not any(c.strip() for c in record):
                continue
            if len(record) != len(header):
                raise DataError(f"{path}:{n}: expected {len(header)} columns (the header's), found {len(record)}")
            row = []
            for i, cell in enumerate(record):
                used = self.columns is None or header[i] in wanted
                try:
                    value = float(cell)
                except ValueError:
                    if used:
                        raise DataError(f"{path}:{n}: column '{header[i]}': not a number: {cell!r}") from None
                    value = float("nan")
                if used and not (math.isfinite(value) and abs(value) <= FLOAT32_MAX):
                    raise DataError(f"{path}:{n}: column '{header[i]}': {cell.strip()!r} is not a finite number "
                                    f"(missing values must be filled in before training)")
                row.append(value)
            rows.append(row)
        return rows

    def raw_splits(self):
        splits, source = super().raw_splits()
        self._train_rows = np.asarray(splits["train"], dtype=np.float32)
        return {name: self.windows(rows, f"{source} ({name} split)") for name, rows in splits.items()}, source

    def load_with(self, fields: dict | None) -> Data:
        """Windows in time order; a fold validating on later windows leaves out the training
        windows whose targets reach into its first window's targets."""
        return replace(super().load_with(fields), ordered=True, gap=-(-(self.horizon - 1) // self.stride))

    def load_file(self, path: str, fields: dict) -> list[dict]:
        return [self.encode(w, fields) for w in self.windows(self._read(path), path)]

    def windows(self, rows, where: str) -> list:
        array = np.asarray(rows, dtype=np.float32)
        n = (len(array) - self.window - self.horizon) // self.stride + 1
        if n < 1:
            raise DataError(f"{where}: {len(array)} rows, fewer than window + horizon ({self.window + self.horizon})")
        return [(array[i : i + self.window], array[i + self.window : i + self.window + self.horizon])
                for i in range(0, n * self.stride, self.stride)]

    def _indices(self):
        inputs = [self._header.index(c) for c in self.columns] if self.columns else list(range(len(self._header)))
        targets = [self._header.index(c) for c in self.target_columns] if self.target_columns else inputs
        return inputs, targets

    def make_fields(self, train) -> dict:
        inputs, targets = self._indices()
        first = self._train_rows  # statistics of the training rows only
        last_of = [inputs.index(t) if t in inputs else None for t in targets]
        return {"input": V.Numeric.fit(first[:, inputs], [self._header[i] for i in inputs]),
                "target": V.Numeric.fit(first[:, targets], [self._header[i] for i in targets],
                                        last_of if None not in last_of else None, steps=self.horizon)}

    def encode(self, raw, fields) -> dict:
        inputs, targets = self._indices()
        x, y = raw
        return {"input": torch.from_numpy(x[:, inputs].copy()), "target": torch.from_numpy(y[:, targets].copy())}
