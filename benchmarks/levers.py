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

    python benchmarks/levers.py [--steps N] [--tasks spell addition]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--tasks", nargs="+", default=["spell", "addition"])
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; steps: {args.steps or "each recipe's own"}")
    work = Path(tempfile.mkdtemp(prefix="seqcli-levers-"))
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
