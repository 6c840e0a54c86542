"""Models of the size users train, for the serving and export benchmarks (and by hand).

`seq2seq`: characters in, symbols out. 100,000 generated pairs of a made-up spelling-to-sound
rule set (digraphs such as "th", "sh", "ee" are one symbol, a final "e" is silent, "c" is
"k" or "s" by what follows, letters repeat as one symbol), words of 3 to 14 letters; a
bidirectional LSTM of 256 units with additive attention (about 2M parameters), trained for
--steps steps (the outputs end where they should, so decoding runs as long as it would in
use). Its test split: 6,300 words.

`lm`: a word-level language model over a 10,000-word vocabulary (generated sentences whose
words follow a Zipf law), a 2-layer LSTM of 256 units.

Each is trained once and kept under --cache (default ~/.cache/seqcli-bench), keyed by its
settings; `path(name)` trains it when it is missing and returns the run folder.

    python benchmarks/realsize.py [seq2seq|lm] [--steps N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("SEQCLI_BENCH_CACHE", Path.home() / ".cache" / "seqcli-bench"))
PAIRS, TEST = 100_000, 6_300
DIGRAPHS = {"th": "T", "sh": "S", "ch": "C", "ph": "f", "ee": "I", "oo": "U", "ng": "N", "qu": "kw", "ck": "k",
            "ai": "E", "ou": "W", "oa": "O"}

SEQ2SEQ = f"""\
description: "real size: spelling to sound (characters in, symbols out), 100,000 generated pairs"
dataset: {{name: pairs, train: TRAIN, valid: VALID, test: TEST, source_tokenize: char, target_tokenize: whitespace}}
task: {{name: seq2seq}}
model:
  cell: {{name: lstm}}
  embedding_size: 64
  hidden_size: 256
  bidirectional: true
  attention: additive
train:
  batch_size: 64
  max_steps: STEPS
  optimizer: {{name: adam, lr: 0.002}}
  eval_every: 500
  eval_batches: 20
  log_every: 100
sample: {{inputs: [thinking, cheese]}}
"""

LM = """\
description: "real size: a word-level language model over 10,000 words"
dataset: {name: text, train: TRAIN, valid: VALID, test: TEST, level: word}
task: {name: language_model}
model:
  cell: {name: lstm}
  embedding_size: 256
  hidden_size: 256
  num_layers: 2
  tie_weights: true
train:
  batch_size: 32
  seq_len: 35
  max_steps: STEPS
  optimizer: {name: adam, lr: 0.002}
  eval_every: 500
  eval_batches: 20
  log_every: 100
sample: {prime: "", length: 50}
"""


def sound(word: str) -> str:
    """The made-up rules: a word -> its symbols, separated by spaces."""
    out, i = [], 0
    while i < len(word):
        pair = word[i : i + 2]
        if pair in DIGRAPHS:
            out.extend(DIGRAPHS[pair])
            i += 2
            continue
        c = word[i]
        if c == "e" and i == len(word) - 1 and len(word) > 3:
            break  # a silent final e
        if c == "c":
            c = "s" if word[i + 1 : i + 2] in ("e", "i", "y") else "k"
        if c == "x":
            out.extend("ks")
        elif not out or out[-1] != c:  # a doubled letter is one sound
            out.append(c)
        i += 1
    return " ".join(out or ["_"])


def words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    weights = [8, 2, 3, 4, 12, 2, 2, 6, 7, 1, 1, 4, 2, 7, 8, 2, 1, 6, 6, 9, 3, 1, 2, 1, 2, 1]
    return ["".join(rng.choices(letters, weights, k=rng.randint(3, 14))) for _ in range(n)]


def write_pairs(folder: Path) -> dict[str, Path]:
    files = {}
    for split, n, seed in (("train", PAIRS, 1), ("valid", 1_000, 2), ("test", TEST, 3)):
        files[split] = folder / f"{split}.tsv"
        files[split].write_text("source\ttarget\n" + "".join(f"{w}\t{sound(w)}\n" for w in words(n, seed)))
    return files


def write_corpus(folder: Path) -> dict[str, Path]:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(9_990)]
    weights = [1 / (r + 1) for r in range(len(vocab))]
    files = {}
    for split, lines in (("train", 60_000), ("valid", 2_000), ("test", 2_000)):
        files[split] = folder / f"{split}.txt"
        with open(files[split], "w") as f:
            for _ in range(lines):
                f.write(" ".join(rng.choices(vocab, weights, k=rng.randint(5, 25))) + "\n")
    return files


def path(name: str = "seq2seq", steps: int | None = None, log=print) -> Path:
    """The run folder of the real-size model `name`, trained now if it is not cached."""
    steps = steps or {"seq2seq": 4000, "lm": 1500}[name]
    key = hashlib.sha256(f"{name}-{steps}-{SEQ2SEQ if name == 'seq2seq' else LM}".encode()).hexdigest()[:10]
    folder = CACHE / f"{name}-{key}"
    run = folder / "run"
    if (run / "checkpoints" / "best.pt").exists():
        return run
    folder.mkdir(parents=True, exist_ok=True)
    files = write_pairs(folder) if name == "seq2seq" else write_corpus(folder)
    text = SEQ2SEQ if name == "seq2seq" else LM
    for split, file in files.items():
        text = text.replace(split.upper(), str(file))
    (folder / "recipe.yaml").write_text(text.replace("STEPS", str(steps)))
    log(f"training the real-size {name} model ({steps} steps) into {run}", flush=True)
    subprocess.run([sys.executable, "-m", "seqcli", "run", str(folder / "recipe.yaml"), "--run-dir", str(run)],
                   check=True, capture_output=True)
    return run


def test_inputs(run: Path) -> list[str]:
    """The test split's inputs of the real-size seq2seq (6,300 words)."""
    tsv = run.parent / "test.tsv"
    return [line.split("\t")[0] for line in tsv.read_text().splitlines()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="seq2seq", choices=["seq2seq", "lm"])
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    print(path(args.name, args.steps))


if __name__ == "__main__":
    main()
