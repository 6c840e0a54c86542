"""The training and decoding levers, side by side on bundled seq2seq tasks, in one run.

For each task (`spell`: numbers to English words, `addition`: "12+345" to "357"), its
recipe is trained three times (train.seed 1, 2, 3) keeping its last checkpoints, then once
more with `task.label_smoothing: 0.1` and once with `train.ema: 0.999` (seed 1 both).
Every model is scored on the test split by `seqcli evaluate` (greedy decoding): exact match
(higher is better) and CER (lower is better), for
  - the plain run (seed 1), and the mean of the three seeds alone;
  - label smoothing 0.1; EMA 0.999;
  - `seqcli average` of the seed-1 run's last 3 checkpoints;
  - the ensemble of the three seeds (`seqcli evaluate RUN1 RUN2 RUN3`).
`--steps` shortens every run (default: the recipe's own budget); `--tasks` chooses tasks.

`--part cv`: `digits` trained on its own split (valid accuracy of the best checkpoint, and
its test accuracy) against `seqcli run digits --folds 5` (the folds' mean and standard
deviation, and the mean test accuracy of the five models).

`--part cv-series`: cross-validation on ordered data: a generated monthly series (a level
that drifts as a random walk, a yearly cycle whose strength changes, noise; 720 months)
forecast 12 months ahead from the last 24 (`series`; the last 100 windows are the test
split). What the recipe's model scores on that held-out end, against what 5 folds estimate:
`seqcli run --folds 5` forward-chains (each fold validates on months after all it trains
on); the same folds dealt shuffled (what seqcli did before; done here by marking the data
unordered) train on windows that share 11 of their 12 targets with the ones they validate on.

`--part embeddings`: a word-level classifier (`labeled` text, 4 topics of 60 words each
among 300 filler words; 8 words a sentence, 2 from its topic) trained on 200 sentences,
with and without `model.embeddings` from a file of vectors this script writes (each topic
word: its topic's direction plus noise; fillers: noise), frozen and not; test accuracy on
1,000 sentences.

`--part copy`: seq2seq on generated pairs ('please call A and B' -> 'calling B then A') whose
test split's names never occur in training, with and without `model.copy`: exact match,
WER and CER on the test split.

    python benchmarks/levers.py [--part levers|cv|cv-series|embeddings|copy|all] [--steps N] [--tasks spell addition]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def seqcli(*args) -> str:
    result = subprocess.run([sys.executable, "-m", "seqcli", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"seqcli {' '.join(map(str, args))}: {result.stderr.strip()}")
    return result.stdout


def scores(*runs) -> tuple[float, float]:
    out = json.loads(seqcli("evaluate", *runs, "--json"))
    return out["exact_match"], out["cer"]


def lever(task: str, work: Path, steps: int | None) -> dict[str, tuple[float, float]]:
    budget = [f"train.max_steps={steps}", f"train.eval_every={max(1, steps // 10)}"] if steps else []
    keep = [*budget, "train.keep_checkpoints=3"]
    runs = {}
    for seed in (1, 2, 3):
        runs[f"seed {seed}"] = work / f"{task}-seed{seed}"
        seqcli("run", task, *keep, f"train.seed={seed}", "--run-dir", runs[f"seed {seed}"])
    runs["smoothing"] = work / f"{task}-smooth"
    seqcli("run", task, *budget, "train.seed=1", "task.label_smoothing=0.1", "--run-dir", runs["smoothing"])
    runs["ema"] = work / f"{task}-ema"
    seqcli("run", task, *budget, "train.seed=1", "train.ema=0.999", "--run-dir", runs["ema"])
    averaged = work / f"{task}-avg.pt"
    seqcli("average", runs["seed 1"], "--last", 3, "-o", averaged)
    seeds = [scores(runs[f"seed {s}"]) for s in (1, 2, 3)]
    return {
        "plain (seed 1)": seeds[0],
        "plain, mean of seeds 1-3": (sum(s[0] for s in seeds) / 3, sum(s[1] for s in seeds) / 3),
        "label smoothing 0.1": scores(runs["smoothing"]),
        "EMA 0.999": scores(runs["ema"]),
        "average of the last 3 checkpoints": scores(averaged),
        "ensemble of seeds 1-3": scores(*(runs[f"seed {s}"] for s in (1, 2, 3))),
    }


def cross_validation(work: Path) -> None:
    started = time.perf_counter()
    single = work / "digits"
    seqcli("run", "digits", "--run-dir", single)
    best = json.loads(seqcli("evaluate", single, "--split", "valid", "--json"))["accuracy"]
    test = json.loads(seqcli("evaluate", single, "--json"))["accuracy"]
    seqcli("run", "digits", "--folds", 5, "--run-dir", work / "digits-cv")
    summary = json.loads((work / "digits-cv" / "folds.json").read_text())["valid"]["accuracy"]
    tests = [json.loads(seqcli("evaluate", work / "digits-cv" / f"fold-{n}", "--json"))["accuracy"] for n in range(1, 6)]
    print(f"\ndigits, accuracy ({time.perf_counter() - started:.0f} s)")
    print(f"  its own split: valid {best:.4f} (one number), test {test:.4f}")
    print(f"  5 folds: valid {summary['mean']:.4f} +- {summary['std']:.4f} "
          f"(folds {', '.join(f'{v:.4f}' for v in summary['folds'])}); "
          f"test, mean of the 5 models {sum(tests) / 5:.4f} ({', '.join(f'{v:.4f}' for v in tests)})")


MONTHS = 720
SHUFFLED = ("import dataclasses, sys; from seqcli.data.datasets import series; load = series.SeriesDataset.load_with; "
            "series.SeriesDataset.load_with = lambda self, fields: dataclasses.replace(load(self, fields), "
            "ordered=False); from seqcli.cli import main; sys.argv[0] = 'seqcli'; main()")


def cross_validation_series(work: Path) -> None:
    import math
    import random

    started = time.perf_counter()
    rng = random.Random(0)
    level, rows = 100.0, ["month,value"]
    for t in range(MONTHS):
        level += rng.gauss(0, 1.0)
        season = (10 + 8 * math.sin(2 * math.pi * t / 300)) * math.sin(2 * math.pi * t / 12)
        rows.append(f"{t},{level + season + rng.gauss(0, 2):.3f}")
    (work / "monthly.csv").write_text("\n".join(rows) + "\n")
    recipe = work / "monthly.yaml"
    recipe.write_text(f"""\
dataset: {{name: series, path: {work}/monthly.csv, columns: [value], window: 24, horizon: 12, test_size: 100,
          valid_size: 100}}
task: {{name: forecast}}
model: {{cell: {{name: gru}}, hidden_size: 64}}
train: {{max_steps: 1500, batch_size: 32, eval_every: 100, optimizer: {{name: adam, lr: 0.003}}}}
""")
    seqcli("run", recipe, "--run-dir", work / "monthly")
    held_out = json.loads(seqcli("evaluate", work / "monthly", "--json"))["rmse"]
    print(f"\n{MONTHS} months, the next 12 from the last 24; RMSE in the data's units "
          f"(the recipe's own split: the model scores {held_out:.2f} on the last 100 windows, held out):")
    for name, launch in (("forward-chaining (seqcli)", [sys.executable, "-m", "seqcli"]),
                         ("shuffled folds", [sys.executable, "-c", SHUFFLED])):
        folder = work / f"monthly-{name.split()[0]}"
        subprocess.run([*launch, "run", str(recipe), "--folds", "5", "--run-dir", str(folder)], check=True,
                       capture_output=True)
        summary = json.loads((folder / "folds.json").read_text())["valid"]["rmse"]
        print(f"  {name:28} 5 folds say {summary['mean']:.2f} +- {summary['std']:.2f} "
              f"({', '.join(f'{v:.2f}' for v in summary['folds'])})")
        record("levers", f"series cross-validation, {name}: folds' RMSE vs the held-out RMSE", summary["mean"],
               held_out, "RMSE")
    print(f"  ({time.perf_counter() - started:.0f} s)")


def embeddings(work: Path) -> None:
    import random

    import torch

    started = time.perf_counter()
    rng = random.Random(0)
    topics = [[f"t{k}w{i}" for i in range(60)] for k in range(4)]
    fillers = [f"f{i}" for i in range(300)]

    def sentences(n: int) -> str:
        lines = ["input\tlabel"]
        for _ in range(n):
            k = rng.randrange(4)
            words = rng.sample(fillers, 6) + rng.sample(topics[k], 2)
            rng.shuffle(words)
            lines.append(f"{' '.join(words)}\ttopic{k}")
        return "\n".join(lines) + "\n"

    for split, n in (("train", 200), ("valid", 100), ("test", 1000)):
        (work / f"topics-{split}.tsv").write_text(sentences(n))
    generator = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(4, 16, generator=generator), dim=-1) * 2
    with open(work / "vectors.txt", "w") as f:
        for k, words in enumerate(topics):
            for word in words:
                f.write(word + " " + " ".join(f"{v:.5f}" for v in (directions[k] + 0.3 * torch.randn(16, generator=generator)).tolist()) + "\n")
        for word in fillers:
            f.write(word + " " + " ".join(f"{v:.5f}" for v in (0.3 * torch.randn(16, generator=generator)).tolist()) + "\n")
    recipe = work / "topics.yaml"
    recipe.write_text(f"""\
dataset: {{name: labeled, train: {work}/topics-train.tsv, valid: {work}/topics-valid.tsv, test: {work}/topics-test.tsv}}
task: {{name: classify}}
model: {{cell: {{name: lstm}}, embedding_size: 16, hidden_size: 32}}
train: {{max_steps: 300, batch_size: 16, eval_every: 50, optimizer: {{name: adam, lr: 0.005}}}}
""")
    print("\ntopic classification from 200 sentences, test accuracy on 1,000:")
    for name, keys in (("no pretrained vectors", []),
                       ("model.embeddings", [f"model.embeddings={{path: {work}/vectors.txt}}"]),
                       ("model.embeddings, frozen", [f"model.embeddings={{path: {work}/vectors.txt, freeze: true}}"])):
        run = work / f"topics-{len(keys)}-{name[-6:]}"
        out = seqcli("run", recipe, *keys, "--run-dir", run)
        counted = next((line.strip() for line in out.splitlines() if "model.embeddings:" in line), "")
        accuracy = json.loads(seqcli("evaluate", run, "--json"))["accuracy"]
        print(f"  {name:28} {accuracy:.4f}  {counted}")
    print(f"  ({time.perf_counter() - started:.0f} s)")


def copy_attention(work: Path) -> None:
    import random

    started = time.perf_counter()
    rng = random.Random(0)
    verbs = {"call": "calling", "meet": "meeting", "thank": "thanking", "invite": "inviting"}

    def rows(names, n):
        lines = ["source\ttarget"]
        for _ in range(n):
            a, b = rng.sample(names, 2)
            verb = rng.choice(sorted(verbs))
            lines.append(f"please {verb} {a} and {b}\t{verbs[verb]} {b} then {a}")
        return "\n".join(lines) + "\n"

    seen, unseen = [f"n{i}" for i in range(300)], [f"m{i}" for i in range(100)]
    for split, names, n in (("train", seen, 3000), ("valid", seen, 100), ("test", unseen, 200)):
        (work / f"names-{split}.tsv").write_text(rows(names, n))
    recipe = work / "names.yaml"
    recipe.write_text(f"""\
dataset: {{name: pairs, train: {work}/names-train.tsv, valid: {work}/names-valid.tsv, test: {work}/names-test.tsv,
          tokenize: whitespace}}
task: {{name: seq2seq}}
model: {{cell: {{name: lstm}}, embedding_size: 32, hidden_size: 64, attention: additive}}
train: {{max_steps: 600, batch_size: 32, eval_every: 200, optimizer: {{name: adam, lr: 0.005}}}}
sample: {{inputs: []}}
""")
    print("\nnames never seen in training, test split (exact match / WER / CER):")
    for name, keys in (("without copying", []), ("model.copy: true", ["model.copy=true"])):
        run = work / f"names-{len(keys)}"
        seqcli("run", recipe, *keys, "--run-dir", run)
        scored = json.loads(seqcli("evaluate", run, "--json"))
        print(f"  {name:20} {scored['exact_match']:.3f} / {scored['wer']:.3f} / {scored['cer']:.3f}")
    print(f"  ({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["levers", "cv", "cv-series", "embeddings", "copy", "all"], default="all")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--tasks", nargs="+", default=["spell", "addition"])
    args = parser.parse_args()
    import torch

    budget = args.steps or "each recipe's own"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; steps: {budget}")
    work = Path(tempfile.mkdtemp(prefix="seqcli-levers-"))
    if args.part in ("cv", "all"):
        cross_validation(work)
    if args.part in ("cv-series", "all"):
        cross_validation_series(work)
    if args.part in ("embeddings", "all"):
        embeddings(work)
    if args.part in ("copy", "all"):
        copy_attention(work)
    if args.part not in ("levers", "all"):
        return
    for task in args.tasks:
        started = time.perf_counter()
        table = lever(task, work, args.steps)
        print(f"\n{task} (test split, greedy; {time.perf_counter() - started:.0f} s)")
        print(f"  {'':36} {'exact match':>12} {'CER':>8}")
        for name, (exact, cer) in table.items():
            print(f"  {name:36} {exact:12.4f} {cer:8.4f}")
        plain = table["plain (seed 1)"][0]
        for name in ("label smoothing 0.1", "EMA 0.999", "average of the last 3 checkpoints", "ensemble of seeds 1-3"):
            record("levers", f"{task}: exact match, {name} vs plain", table[name][0], plain, "exact match")


if __name__ == "__main__":
    main()
