"""Gradient accumulation against the large batch it imitates: throughput and peak memory.

`seqcli run reverse` (bi-LSTM encoder and attentional LSTM decoder of `--hidden` units) is
trained for `--steps` steps on batches of `--batch` x `--accumulate` examples, once as one
large batch and once as `--accumulate` batches of `--batch` per optimizer step (the same
update, `tests/test_levers.py`). Each run is its own process; its peak resident memory comes
from the kernel (wait4), its throughput from the run's own log (target tokens/s, the mean of
its training records after the first). Prints both and their ratios.

    python benchmarks/accumulate.py [--steps 30] [--batch 64] [--accumulate 4] [--hidden 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def train(folder: Path, steps: int, batch: int, accumulate: int, hidden: int) -> tuple[float, float]:
    """(target tokens/s, peak resident MiB) of one training process."""
    args = [sys.executable, "-m", "seqcli", "run", "reverse", f"train.max_steps={steps}", f"train.eval_every={steps}",
            "train.log_every=5", "train.eval_batches=1", f"train.batch_size={batch}", f"train.accumulate={accumulate}",
            f"model.hidden_size={hidden}", "dataset.max_length=20", "sample.inputs=[]", "--run-dir", str(folder)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(proc.stderr.read().decode())
    rates = [r["tokens_per_s"] for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
             if r["split"] == "train"][1:]  # the first record includes the warm-up
    return sum(rates) / len(rates), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--accumulate", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    import torch

    work = Path(tempfile.mkdtemp(prefix="seqcli-accumulate-"))
    large = args.batch * args.accumulate
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; reverse, hidden {args.hidden}, "
          f"{args.steps} steps of {large} examples")
    big_rate, big_mem = train(work / "large", args.steps, large, 1, args.hidden)
    acc_rate, acc_mem = train(work / "acc", args.steps, args.batch, args.accumulate, args.hidden)
    rows = [(f"one batch of {large}", big_rate, big_mem),
            (f"{args.accumulate} batches of {args.batch} per step", acc_rate, acc_mem)]
    for name, rate, memory in rows:
        print(f"{name:<28} {rate:>9,.0f} tokens/s  peak {memory:>7,.0f} MiB")
    print(f"accumulated / large: throughput {acc_rate / big_rate:.2f}x, peak memory {acc_mem / big_mem:.2f}x")
    record("accumulate", f"throughput, {args.accumulate} x {args.batch} accumulated vs one batch of {large}",
           acc_rate, big_rate, "tokens/s")
    record("accumulate", f"peak memory, {args.accumulate} x {args.batch} accumulated vs one batch of {large}",
           acc_mem, big_mem, "MiB")


if __name__ == "__main__":
    main()
