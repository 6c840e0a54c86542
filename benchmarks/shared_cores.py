"""Two trainings on one machine: one after the other, at the same time with seqcli's default
threads, and at the same time with the threads forced to the core count.

Each training is `seqcli run char-lm` (2 LSTM layers of 256 units) for `--steps` steps. At the
same time, the two processes are started as a sweep's `--parallel 2` workers start them
(`--threads` set to half the cores each), or with `--threads` set to the core count (torch's
own default in every process). Prints each arrangement's wall time
for both trainings and its ratio to one after the other.

    python benchmarks/shared_cores.py [--steps 150]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def command(folder: Path, name: str, steps: int, threads: int | None) -> list[str]:
    args = [sys.executable, "-m", "seqcli", "run", "char-lm", f"train.max_steps={steps}",
            f"train.eval_every={steps}", "train.eval_batches=5", "sample.length=10", "--run-dir", str(folder / name)]
    return args + (["--threads", str(threads)] if threads else [])


def together(cmds: list[list[str]], env: dict) -> float:
    started = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(p.stderr.read().decode())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    from seqcli.train.threads import cores

    n = cores()
    print(f"{n} cores; each training: char-lm, {args.steps} steps")
    work = Path(tempfile.mkdtemp(prefix="seqcli-concurrent-"))
    env = dict(os.environ)
    subprocess.run(command(work, "warm", 2, None), check=True, capture_output=True)  # the data cache, once
    sequential = sum(together([command(work, f"seq{i}", args.steps, None)], env) for i in range(2))
    shared = together([command(work, f"half{i}", args.steps, max(1, n // 2)) for i in range(2)], env)
    forced = together([command(work, f"all{i}", args.steps, n) for i in range(2)], env)
    print(f"one after the other (each {n} threads): {sequential:.1f} s")
    print(f"at the same time, as sweep --parallel 2 ({max(1, n // 2)} thread(s) each): {shared:.1f} s, "
          f"{shared / sequential:.2f}x one after the other")
    print(f"at the same time, {n} threads each: {forced:.1f} s, {forced / sequential:.2f}x one after the other")
    record("concurrent", "two trainings at once, half the cores each, vs one after the other", shared, sequential, "s")
    record("concurrent", f"two trainings at once, {n} threads each, vs one after the other", forced, sequential, "s")


if __name__ == "__main__":
    main()
