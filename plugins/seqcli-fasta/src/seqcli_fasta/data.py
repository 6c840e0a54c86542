"""Dataset `fasta`: one example per record, the sequence as characters, the target a number
from the header.

    >oligo-17 tm=58.0 source=synthetic
    ACGTTGCAAGCTTGCA
    GGCA

Headers hold `key=value` pairs; `target` names the key to learn. A sequence may span lines.
Records are shuffled with `seed` and split into train, valid and test by fraction.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from seqcli.api import INPUT, TARGET, ConfigError, Data, DataError, Dataset, File, Numeric, Range, Seed, Vocab

Fraction = Annotated[float, Range(0, 0.5, lo_open=True)]


def read_fasta(path: Path, target: str) -> list[tuple[str, float]]:
    """(sequence, value) per record; a malformed record is a DataError naming file and line."""
    records: list[tuple[str, float]] = []
    header, parts, start = None, [], 0

    def close():
        if header is None:
            return
        sequence = "".join(parts).upper()
        if not sequence:
            raise DataError(f"{path}:{start}: record {header.split()[0]!r} has no sequence")
        records.append((sequence, value))

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    value = math.nan
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            close()
            header, parts, start = line[1:], [], number
            pairs = dict(p.split("=", 1) for p in header.split()[1:] if "=" in p)
            if target not in pairs:
                raise DataError(f"{path}:{number}: header has no {target}=NUMBER (it has: {', '.join(pairs) or 'none'})")
            try:
                value = float(pairs[target])
            except ValueError:
                raise DataError(f"{path}:{number}: {target}={pairs[target]!r} is not a number") from None
            if not math.isfinite(value):
                raise DataError(f"{path}:{number}: {target}={pairs[target]} is not a finite number")
        elif header is None:
            raise DataError(f"{path}:{number}: sequence data before the first '>' header")
        elif not line.replace("-", "").isalpha():
            raise DataError(f"{path}:{number}: a sequence line may hold letters only, got {line[:20]!r}")
        else:
            parts.append(line)
    close()
    if not records:
        raise DataError(f"{path}: no FASTA records (a record starts with a '>' header line)")
    return records


class Fasta(Dataset):
    """FASTA records -> fields `input` (a character vocabulary) and `target` (one number,
    with the training split's mean and std), as the `regress` task reads them."""

    api_version = "1.0"

    def __init__(self, path: Annotated[Path, File()], target: str = "value", valid_fraction: Fraction = 0.1,
                 test_fraction: Fraction = 0.1, seed: Seed = 0):
        if valid_fraction + test_fraction >= 0.9:
            raise ConfigError("valid_fraction", "with test_fraction, must leave at least 10% for training")
        if not target or "=" in target or " " in target:
            raise ConfigError("target", f"must be a header key such as tm, got {target!r}")
        self.path, self.target, self.seed = path, target, seed
        self.fractions = (valid_fraction, test_fraction)

    def load(self) -> Data:
        records = read_fasta(self.path, self.target)
        if len(records) < 10:
            raise DataError(f"{self.path}: {len(records)} records, too few to split into train, valid and test")
        random.Random(self.seed).shuffle(records)
        n_valid, n_test = (max(1, int(len(records) * f)) for f in self.fractions)
        parts = {"valid": records[:n_valid], "test": records[n_valid:n_valid + n_test],
                 "train": records[n_valid + n_test:]}
        vocab = Vocab(["<unk>"] + sorted({c for s, _ in parts["train"] for c in s}), "char")
        values = Numeric.fit(np.array([[v] for _, v in parts["train"]]), names=[self.target])
        fields = {INPUT: vocab, TARGET: values}
        splits = {name: self.encode(rows, fields) for name, rows in parts.items()}
        info = {"source": f"{self.path} ({self.target})", **{f"{k}_examples": len(v) for k, v in splits.items()}}
        return Data(splits=splits, fields=fields, info=info)

    def load_file(self, path: str, fields: dict):
        return self.encode(read_fasta(Path(path), self.target), fields)

    @staticmethod
    def encode(rows, fields: dict) -> list[dict]:
        vocab = fields[INPUT]
        return [{INPUT: torch.tensor([vocab.index[c] for c in s]), TARGET: torch.tensor([v], dtype=torch.float32)}
                for s, v in rows]


def make_oligos(path: Path, n: int = 3000, seed: int = 0) -> None:
    """The file the `oligo-tm` recipe trains on: random oligos of 10-30 bases, each with its
    melting temperature by the Wallace rule, Tm = 2 (A + T) + 4 (G + C) degrees C."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            seq = "".join(rng.choice("ACGT") for _ in range(rng.randint(10, 30)))
            tm = 2 * (seq.count("A") + seq.count("T")) + 4 * (seq.count("G") + seq.count("C"))
            f.write(f">oligo-{i} tm={tm:.1f}\n{seq}\n")
