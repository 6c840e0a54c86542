"""Two trainings on one machine: one after the other, at the same time with seqcli's default
threads, and at the same time with the threads forced to the core count. Then a training
beside tiny commands (`--beside`): how idle threads wait.

Each training is `seqcli run char-lm` (2 LSTM layers of 256 units) for `--steps` steps. At the
same time, the two processes are started as a sweep's `--parallel 2` workers start them
(`--threads` set to half the cores each), or with `--threads` set to the core count (torch's
own default in every process). Prints each arrangement's wall time
for both trainings and its ratio to one after the other.

A training started by hand shares the cores with whatever else runs: `--beside` trains a
PTB-size word model (`zaremba-small`: 2x200 LSTM, batch 20, on generated text of 10,000
words) with every core's thread, alone and beside two loops of tiny `seqcli run` commands,
each also with every core's thread, and prints its tokens/s. Once as libgomp waits by
default (GOMP_SPINCOUNT=300000, its documented default spin) and once as `seqcli` sets it
(GOMP_SPINCOUNT=1000, `seqcli.train.threads.quiet_waits`), each `--repeats` times, in
alternation. Goal: beside the tiny commands, within 1.5x of half the solo throughput; alone,
within 5% of libgomp's default.

    python benchmarks/shared_cores.py [--steps 150] [--beside] [--repeats 3]
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


def word_lm(folder: Path, name: str, corpus: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "seqcli", "run", "zaremba-small", f"dataset.path={corpus}", "train.max_epochs=null",
            f"train.max_steps={steps}", f"train.eval_every={steps}", "train.log_every=25", "train.eval_batches=2",
            "sample.length=5", "--run-dir", str(folder / name)]


TINY = ["reverse", "dataset.train_size=64", "dataset.valid_size=16", "model.hidden_size=8", "train.max_steps=40",
        "train.eval_every=40", "sample.inputs=[]"]


def tokens_per_s(run_dir: Path) -> float:
    """The run's training throughput after its first records (the start excluded)."""
    import json

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in records if r["split"] == "train"][1:]
    return sum(rates) / len(rates)


def beside(work: Path, repeats: int, steps: int) -> None:
    """The word model alone and beside two loops of tiny trainings, under each wait setting."""
    import random
    import statistics

    rng = random.Random(0)
    words = [f"w{i}" for i in range(10_000)]
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choices(words, k=20)) for _ in range(20_000)) + "\n")
    settings = {"libgomp default (GOMP_SPINCOUNT=300000)": "300000", "seqcli (GOMP_SPINCOUNT=1000)": "1000"}
    results = {name: {"alone": [], "beside": []} for name in settings}
    subprocess.run(word_lm(work, "warm", corpus, 2), check=True, capture_output=True)  # the data cache, once
    for r in range(repeats):
        for name, spin in settings.items():
            env = {**os.environ, "GOMP_SPINCOUNT": spin}
            env.pop("OMP_WAIT_POLICY", None)
            alone = work / f"alone-{spin}-{r}"
            subprocess.run(word_lm(work, alone.name, corpus, steps), check=True, capture_output=True, env=env)
            results[name]["alone"].append(tokens_per_s(alone))
            stop = work / "stop"
            loop = (f"n=0; while [ ! -e {stop} ]; do n=$((n+1)); {sys.executable} -m seqcli run {' '.join(TINY)} "
                    f"--run-dir {work}/tiny-$$-$n >/dev/null 2>&1; done")
            tiny = [subprocess.Popen(["bash", "-c", loop], env=env) for _ in range(2)]
            time.sleep(3)  # both tiny loops under way
            near = work / f"beside-{spin}-{r}"
            subprocess.run(word_lm(work, near.name, corpus, steps), check=True, capture_output=True, env=env)
            stop.touch()
            for p in tiny:
                p.wait()
            stop.unlink()
            results[name]["beside"].append(tokens_per_s(near))
    print(f"a 2x200 LSTM word model (batch 20, {steps} steps), tokens/s, median of {repeats}:")
    solo = statistics.median(results["libgomp default (GOMP_SPINCOUNT=300000)"]["alone"])
    for name, got in results.items():
        alone, near = statistics.median(got["alone"]), statistics.median(got["beside"])
        print(f"  {name}: alone {alone:,.0f} ({alone / solo:.2f}x libgomp's alone); beside two tiny trainings "
              f"{near:,.0f} ({near / (solo / 2):.2f}x half of libgomp's alone)  "
              f"[alone {', '.join(f'{v:,.0f}' for v in got['alone'])}; beside {', '.join(f'{v:,.0f}' for v in got['beside'])}]")
    seqcli = results["seqcli (GOMP_SPINCOUNT=1000)"]
    record("concurrent", "word LM beside two tiny trainings, seqcli's wait vs libgomp's",
           statistics.median(seqcli["beside"]), statistics.median(results["libgomp default (GOMP_SPINCOUNT=300000)"]["beside"]),
           "tokens/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--beside", action="store_true", help="only the training beside tiny commands")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from seqcli.train.threads import cores

    if args.beside:
        work = Path(tempfile.mkdtemp(prefix="seqcli-beside-"))
        print(f"{cores()} cores, {cores()} threads in every process")
        beside(work, args.repeats, 300)
        return

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
