"""The exported model's reference runner (run.py on onnxruntime) against seqcli on the same
model and inputs: batch-1 language-model sampling, batched greedy and beam-search seq2seq,
classification, and the cold start (a fresh process to its first output).

Models of the bundled recipes' sizes (char-lm, reverse, digits), trained for a few steps
(speed does not depend on training), exported with `seqcli export`. Both sides use the same
number of threads (--threads, default 2) and the same batches (--batch-size). A rate is the
best of --repeats runs; a cold start the median of --runs.

Then the models of real size (benchmarks/realsize.py; trained once and cached): the 2M
parameter seq2seq's 6,300 test inputs as files, `python run.py --input-file` against `seqcli
sample --input-file` (whole commands, start-up included; greedy and beam 5; the outputs
compared), each command's peak memory, and the runner's peak memory on 100,000 inputs
against 6,300; and batch-1 sampling from the 10,000-word language model.

    python benchmarks/export_runner.py [--inputs 2000] [--length 300] [--no-real-size]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def train_and_export(recipe: str, root: Path) -> tuple[Path, Path]:
    from typer.testing import CliRunner

    from seqcli import export
    from seqcli.cli import app

    run = root / recipe
    result = CliRunner().invoke(app, ["run", recipe, "train.max_steps=20", "train.eval_every=20", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    return run, export.export(run, root / f"{recipe}-onnx", test=False)


def runner(folder: Path, threads: int):
    spec = importlib.util.spec_from_file_location(f"run_{folder.name}", folder / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Model(folder, threads)


def best_rate(work, count: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return count / min(times)


def cold(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def row(what: str, runner_value: float, seqcli_value: float, unit: str, goal: str) -> None:
    ratio = runner_value / seqcli_value
    shown = (lambda v: f"{v:>10.3f}") if unit == "s" else (lambda v: f"{v:>10,.1f}")
    print(f"{what:<44} runner {shown(runner_value)}   seqcli {shown(seqcli_value)} {unit:<10} ratio {ratio:5.2f}  "
          f"(goal {goal})", flush=True)
    # in run_all's table the runner takes the "seqcli" column and seqcli the baseline's
    record("export_runner", f"ONNX runner vs seqcli sample: {what}", runner_value, seqcli_value, unit, goal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--real-size", action=argparse.BooleanOptionalAction, default=True,
                        help="also the real-size models (benchmarks/realsize.py; trained once, then cached)")
    args = parser.parse_args()
    import torch

    import seqcli

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lm_run, lm_folder = train_and_export("char-lm", root)
        s2s_run, s2s_folder = train_and_export("reverse", root)
        cls_run, cls_folder = train_and_export("digits", root)
        print(f"threads {args.threads} (torch and onnxruntime); batch {args.batch_size}; {args.inputs} inputs")

        ours, theirs = seqcli.load(lm_run), runner(lm_folder, args.threads)
        sample = {"prime": "The ", "length": args.length, "temperature": 0.8, "seed": 1}
        row("language model, batch 1", best_rate(lambda: theirs.generate(**sample), args.length, args.repeats),
            best_rate(lambda: ours.sample(**sample), args.length, args.repeats), "tokens/s", ">= 1")

        ours, theirs = seqcli.load(s2s_run), runner(s2s_folder, args.threads)
        words = ["".join(rng.choice(list("abcdefghij"), rng.integers(4, 11))) for _ in range(args.inputs)]
        chunks = [words[i : i + args.batch_size] for i in range(0, len(words), args.batch_size)]
        for name, options in (("greedy", {"beam_size": 1}), ("beam 5", {"beam_size": 5})):
            assert theirs.predict(chunks[0], **options) == ours.predict(chunks[0], **options)
            row(f"seq2seq {name}", best_rate(lambda: [theirs.predict(c, **options) for c in chunks], len(words),
                                             args.repeats),
                best_rate(lambda: [ours.predict(c, **options) for c in chunks], len(words), args.repeats),
                "inputs/s", ">= 1")

        ours, theirs = seqcli.load(cls_run), runner(cls_folder, args.threads)
        images = ["; ".join(" ".join(str(int(v)) for v in rng.integers(0, 16, 8)) for _ in range(8))
                  for _ in range(args.inputs)]
        chunks = [images[i : i + args.batch_size] for i in range(0, len(images), args.batch_size)]
        row("classify", best_rate(lambda: [theirs.predict(c) for c in chunks], len(images), args.repeats),
            best_rate(lambda: [ours.predict(c) for c in chunks], len(images), args.repeats), "examples/s", ">= 1")

        started_runner = cold([sys.executable, str(s2s_folder / "run.py"), "--input", "abcd"], args.runs)
        started_seqcli = cold([sys.executable, "-m", "seqcli", "sample", str(s2s_run), "--input", "abcd"], args.runs)
        row("cold start to the first output (seq2seq)", started_runner, started_seqcli, "s", "< 0.33")
        if args.real_size:
            real_size(root, args)


# the peak resident memory of this process's own memory map (VmHWM, in kB): ru_maxrss would
# also count the parent's, which a forked child inherits
MAXRSS = ("import runpy, sys; sys.argv = sys.argv[1:]; code = 0\n"
          "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
          "except SystemExit as exc:\n    code = exc.code or 0\n"
          "peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
          "print('maxrss', peak, file=sys.stderr); sys.exit(code)")


def command(args: list[str]) -> tuple[float, float]:
    """Seconds and peak memory (MB) of a whole command."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MAXRSS, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    return elapsed, int(done.stderr.rsplit("maxrss", 1)[1].split()[0]) / 1024


def real_size(root: Path, args) -> None:
    import random

    import realsize
    import seqcli

    run = realsize.path("seq2seq")
    folder = root / "real-onnx"
    from seqcli import export

    export.export(run, folder, test=False)
    inputs = root / "real.txt"
    inputs.write_text("\n".join(realsize.test_inputs(run)) + "\n")
    count = len(realsize.test_inputs(run))
    seqcli_main = str(Path(seqcli.__file__).parent / "__main__.py")
    print(f"real size: seq2seq of {sum(p.numel() for p in seqcli.load(run).model.parameters()):,} parameters, "
          f"{count:,} test inputs, whole commands, threads {args.threads}, batch {args.batch_size}")
    for name, beam in (("greedy", 1), ("beam 5", 5)):
        times = {"runner": [], "seqcli": []}
        for _ in range(args.repeats):
            times["runner"].append(command([str(folder / "run.py"), "--input-file", str(inputs), "-o",
                                            str(root / "r.txt"), "--beam-size", str(beam), "--threads",
                                            str(args.threads), "--batch-size", str(args.batch_size)]))
            times["seqcli"].append(command([seqcli_main, "sample", str(run), "--input-file", str(inputs), "-o",
                                            str(root / "s.txt"), "--force", "--beam-size", str(beam), "--threads",
                                            str(args.threads), "--batch-size", str(args.batch_size)]))
        same = (root / "r.txt").read_text() == (root / "s.txt").read_text()
        (mine, my_rss), (theirs, their_rss) = min(times["runner"]), min(times["seqcli"])
        row(f"real-size seq2seq {name}, {count:,} inputs", count / mine, count / theirs, "inputs/s", ">= 1")
        print(f"    peak memory: runner {my_rss:,.0f} MB, seqcli {their_rss:,.0f} MB; outputs identical: {same}",
              flush=True)
    rng = random.Random(0)
    many = root / "many.txt"
    many.write_text("\n".join(rng.choice(realsize.test_inputs(run)) for _ in range(100_000)) + "\n")
    _, few_rss = command([str(folder / "run.py"), "--input-file", str(inputs), "-o", str(root / "r.txt"),
                          "--threads", str(args.threads)])
    elapsed, many_rss = command([str(folder / "run.py"), "--input-file", str(many), "-o", str(root / "r.txt"),
                                 "--threads", str(args.threads)])
    print(f"    runner's peak memory, greedy: {count:,} inputs {few_rss:,.0f} MB, 100,000 inputs {many_rss:,.0f} MB "
          f"({elapsed:.1f} s)", flush=True)
    record("export_runner", "real-size seq2seq: runner's peak memory, 100,000 inputs vs 6,300", many_rss, few_rss,
           "MB", "flat")

    lm_run = realsize.path("lm")
    lm_folder = root / "real-lm-onnx"
    export.export(lm_run, lm_folder, test=False)
    ours, theirs = seqcli.load(lm_run), runner(lm_folder, args.threads)
    sample = {"prime": "w1 w2", "length": args.length, "temperature": 0.8, "seed": 1}
    row(f"real-size word LM ({len(ours.fields['text']):,} words), batch 1",
        best_rate(lambda: theirs.generate(**sample), args.length, args.repeats),
        best_rate(lambda: ours.sample(**sample), args.length, args.repeats), "tokens/s", ">= 1")


if __name__ == "__main__":
    main()
