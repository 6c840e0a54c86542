"""Dataset `digits`: scikit-learn's handwritten 8x8 digits (1,797 images, shipped inside the
package, no download), read as a sequence: row by row or column by column."""

from __future__ import annotations

import importlib.util
from typing import Annotated, Literal

import numpy as np
import torch

from seqcli.api import ConfigError, Data, Dataset, Range, Seed
from seqcli import vocab as V
from seqcli.data.datasets.synthetic import spell
from seqcli.data.examples import carve


class DigitsDataset(Dataset):
    """Each image is 8 steps of 8 pixel values (0-16 scaled to 0-1). With `caption: true` the
    flattened image is the condition and the digit's English name the target (one-to-many).
    Needs the optional extra: pip install 'seqcli[digits]'."""

    def __init__(self, read: Literal["rows", "columns"] = "rows", caption: bool = False,
                 valid_fraction: Annotated[float, Range(0.01, 0.5)] = 0.15,
                 test_fraction: Annotated[float, Range(0, 0.5)] = 0.15, seed: Seed = 0):
        if importlib.util.find_spec("sklearn") is None:
            raise ConfigError("name", "dataset 'digits' needs scikit-learn: pip install 'seqcli[digits]'")
        self.read, self.caption = read, caption
        self.valid_fraction, self.test_fraction, self.seed = valid_fraction, test_fraction, seed

    def load(self) -> Data:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = digits.images.astype(np.float32) / 16.0  # (N, 8, 8)
        if self.read == "columns":
            images = images.transpose(0, 2, 1)
        examples = list(zip(images, digits.target.tolist()))
        raw = carve(examples, self.valid_fraction, self.test_fraction, self.seed, "digits")
        if self.caption:
            target = V.build((list(spell(d)) for d in range(10)), "char", specials=(V.UNK, V.EOS, V.BOS))
            flat = np.stack([x.reshape(-1) for x, _ in raw["train"]])
            fields = {"condition": V.Numeric.fit(flat, [f"p{i}" for i in range(64)]), "target": target}
            splits = {k: [{"condition": torch.from_numpy(x.reshape(-1).copy()),
                           "target": torch.tensor(target.encode(spell(d)))} for x, d in v] for k, v in raw.items()}
        else:
            rows = np.concatenate([x for x, _ in raw["train"]])
            fields = {"input": V.Numeric.fit(rows, [f"p{i}" for i in range(8)]), "label": V.Labels([str(d) for d in range(10)])}
            fields["input"].steps = 8  # every image has 8 rows
            splits = {k: [{"input": torch.from_numpy(x.copy()), "label": torch.tensor(d)} for x, d in v]
                      for k, v in raw.items()}
        info = {"source": f"scikit-learn digits, read by {self.read[:-1]}", **{f"{k}_examples": len(v) for k, v in splits.items()}}
        return Data(splits=splits, fields=fields, info=info)
