"""Dataset `synthetic`: generated problems for quick starts and teaching, seeded.

| problem | shape | example |
|---|---|---|
| copy, reverse, sort | seq2seq | `cabd` -> `cabd`, `dbac`, `abcd` |
| addition | seq2seq | `123+45` -> `168` |
| spell | generate | the number 42 -> `forty two` |
| copy_memory | tag | memorise `max_length` symbols, wait `delay` steps, then recall them |
| adding | forecast (many-to-one regression) | (value, marker) pairs; the answer is the sum of the two marked values |
| seasonal | forecast | a noisy series with daily (24) and weekly (168) cycles: `window` steps in, `horizon` out |

`copy_memory` and `adding` (Hochreiter & Schmidhuber, 1997) need memory over `delay` or
`max_length` steps: a vanilla RNN fails them as the distance grows, an LSTM does not.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

import numpy as np
import torch

from seqcli.api import ConfigError, Data, Dataset, Range, Seed
from seqcli import vocab as V

Problem = Literal["copy", "reverse", "sort", "addition", "spell", "copy_memory", "adding", "seasonal"]
Count = Annotated[int, Range(1, 10_000_000)]
ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int) -> str:
    """English words for 0 <= n < 1,000,000."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + spell(n % 100))
    return spell(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + spell(n % 1000))


class SyntheticDataset(Dataset):
    """Generated examples; the same `seed` always gives the same data."""

    def __init__(self, problem: Problem = "reverse", train_size: Count = 5000, valid_size: Count = 500,
                 test_size: Count = 500, min_length: Annotated[int, Range(1, 10_000)] = 1,
                 max_length: Annotated[int, Range(1, 10_000)] = 10, symbols: Annotated[int, Range(2, 26)] = 10,
                 delay: Annotated[int, Range(1, 100_000)] = 20, max_number: Annotated[int, Range(1, 999_999)] = 99,
                 window: Annotated[int, Range(1, 100_000)] = 48, horizon: Annotated[int, Range(1, 100_000)] = 6,
                 seed: Seed = 0):
        if min_length > max_length:
            raise ConfigError("min_length", f"must be <= max_length ({max_length})")
        self.problem, self.sizes = problem, {"train": train_size, "valid": valid_size, "test": test_size}
        self.min_length, self.max_length, self.symbols = min_length, max_length, symbols
        self.delay, self.max_number, self.seed = delay, max_number, seed
        self.window, self.horizon = window, horizon

    def load(self) -> Data:
        rng = random.Random(self.seed)
        if self.problem == "seasonal":
            raw = self.seasonal(rng)
        else:
            raw = {k: [self.example(rng) for _ in range(n)] for k, n in self.sizes.items()}
        fields = self.fields(raw["train"])
        splits = {k: [self.encode(r, fields) for r in v] for k, v in raw.items()}
        info = {"source": f"synthetic {self.problem} (seed {self.seed})", **{f"{k}_examples": n for k, n in self.sizes.items()}}
        if self.problem == "seasonal":  # windows of one series, one step apart, in time order
            return Data(splits=splits, fields=fields, info=info, ordered=True, gap=self.horizon - 1)
        return Data(splits=splits, fields=fields, info=info)

    def example(self, rng: random.Random):
        p, letters = self.problem, "abcdefghijklmnopqrstuvwxyz"[: self.symbols]
        if p in ("copy", "reverse", "sort"):
            s = "".join(rng.choice(letters) for _ in range(rng.randint(self.min_length, self.max_length)))
            return s, {"copy": s, "reverse": s[::-1], "sort": "".join(sorted(s))}[p]
        if p == "addition":
            a, b = (rng.randint(0, 10 ** rng.randint(self.min_length, self.max_length) - 1) for _ in range(2))
            return f"{a}+{b}", str(a + b)
        if p == "spell":
            n = rng.randint(0, self.max_number)
            return str(n), spell(n)
        if p == "copy_memory":  # remember k symbols, wait, recall them after the ':' cue
            k = self.max_length
            seq = "".join(rng.choice(letters) for _ in range(k))
            source = seq + "-" * (self.delay - 1) + ":" + "-" * k
            return source, "-" * (k + self.delay) + seq
        # adding: T steps of (value, marker); two markers, one in each half
        T = self.max_length
        values = [rng.random() for _ in range(T)]
        i, j = rng.randrange(max(1, T // 2)), rng.randrange(T // 2, T) if T > 1 else 0
        markers = [1.0 if t in (i, j) else 0.0 for t in range(T)]
        return [[v, m] for v, m in zip(values, markers)], [[values[i] + (values[j] if j != i else 0.0)]]

    def seasonal(self, rng: random.Random) -> dict[str, list]:
        """One long series, cut in time into train, valid and test; windows inside each part."""
        span = self.window + self.horizon - 1
        total = sum(self.sizes.values()) + 3 * span
        t = np.arange(total)
        noise = np.array([rng.gauss(0, 0.1) for _ in range(total)])
        series = (np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 168) + t / total + noise).astype(np.float32)
        out, start = {}, 0
        for name, n in self.sizes.items():
            part = series[start : start + n + span, None]
            out[name] = [(part[i : i + self.window], part[i + self.window : i + self.window + self.horizon]) for i in range(n)]
            start += n + span
        return out

    def fields(self, train) -> dict:
        p = self.problem
        if p == "seasonal":
            rows = np.concatenate([train[0][0]] + [x[-1:] for x, _ in train[1:]])
            return {"input": V.Numeric.fit(rows, ["value"]),
                    "target": V.Numeric.fit(rows, ["value"], last_of=[0], steps=self.horizon)}
        if p == "adding":
            return {"input": V.Numeric.fit(np.asarray([s for x, _ in train for s in x]), ["value", "marker"]),
                    "target": V.Numeric.fit(np.asarray([y[0] for _, y in train]), ["sum"], steps=1)}
        if p == "copy_memory":
            return {"input": V.build((list(x) for x, _ in train), "char"),
                    "tags": V.Labels(sorted({c for _, y in train for c in y}))}
        target = V.build((V.split(y, "char") for _, y in train), "char", specials=(V.UNK, V.EOS, V.BOS))
        if p == "spell":
            return {"condition": V.Labels([str(n) for n in range(self.max_number + 1)]), "target": target}
        return {"source": V.build((list(x) for x, _ in train), "char"), "target": target}

    def encode(self, raw, fields) -> dict:
        x, y = raw
        p = self.problem
        if p == "seasonal":
            return {"input": torch.from_numpy(x.copy()), "target": torch.from_numpy(y.copy())}
        if p == "adding":
            return {"input": torch.tensor(x, dtype=torch.float32), "target": torch.tensor(y, dtype=torch.float32)}
        if p == "copy_memory":
            return {"input": torch.tensor([fields["input"].index[c] for c in x]),
                    "tags": torch.tensor([fields["tags"].index[c] for c in y])}
        target = torch.tensor([fields["target"].index[c] for c in y])
        if p == "spell":
            return {"condition": torch.tensor(int(x)), "target": target}
        return {"source": torch.tensor([fields["source"].index[c] for c in x]), "target": target}
