"""Data preparation: a large text file made ready to train on (character level), against the
way it is usually written by hand in PyTorch, and seqcli's cache on a second run.

The file is generated (`--mb` megabytes of lines from the default corpus, shuffled). seqcli's
`text` dataset reads it, builds the vocabulary from the training split and encodes every
split with vectorised NumPy (seqcli/data/vocab.py), then caches the token arrays; a second
load memory-maps them. The baseline: `sorted(set(text))`, a dict, and a list comprehension
into torch.tensor. Each runs in its own process.

    python benchmarks/data_prep.py [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def make_file(path: Path, megabytes: int) -> None:
    from seqcli.data.corpus import default_corpus

    lines = default_corpus()[0].splitlines(keepends=True)
    rng = random.Random(0)
    out, size = [], 0
    while size < megabytes * 1_000_000:
        line = rng.choice(lines)
        out.append(line)
        size += len(line)
    path.write_text("".join(out), encoding="utf-8")


def plain(path: str) -> float:
    import torch

    start = time.perf_counter()
    text = open(path, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train, valid = data[:n], data[n:]
    assert train.numel() + valid.numel() == len(text)
    return time.perf_counter() - start


def seqcli(path: str) -> float:
    from seqcli.data.datasets.text import TextDataset

    start = time.perf_counter()
    data = TextDataset(path=path).load()
    assert sum(t.numel() for t in data.splits.values()) > 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"plain": plain, "seqcli": seqcli}[args.worker](args.path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        make_file(path, args.mb)
        megabytes = path.stat().st_size / 1e6
        env = {**os.environ, "SEQCLI_CACHE_DIR": str(Path(tmp) / "cache")}

        def timed(worker: str) -> float:
            out = subprocess.run([sys.executable, __file__, "--worker", worker, "--path", str(path)], env=env,
                                 capture_output=True, text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        base = timed("plain")
        first = timed("seqcli")
        second = timed("seqcli")
    print(f"{megabytes:.0f} MB of text, character level, ready to train on (read, vocabulary, encode, split):")
    print(f"hand-written (set, dict, list comprehension)  {base:6.2f} s  {megabytes / base:7.1f} MB/s")
    print(f"seqcli, first run (vectorised, then cached)   {first:6.2f} s  {megabytes / first:7.1f} MB/s  "
          f"({base / first:.1f}x faster)")
    print(f"seqcli, second run (memory-mapped cache)      {second:6.3f} s  {megabytes / second:7.1f} MB/s")
    record("data_prep", f"{megabytes:.0f} MB text to token arrays, first run (vs hand-written)", megabytes / first,
           megabytes / base, "MB/s")
    record("data_prep", f"{megabytes:.0f} MB text, second run from the cache (vs hand-written)", megabytes / second,
           megabytes / base, "MB/s")


if __name__ == "__main__":
    main()
