"""The performance suite in one command: every benchmark, each comparison in its own
processes against its plain-PyTorch baseline on this machine, then one table of ratios.

    python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--markdown FILE]

--quick runs fewer steps and repeats, and leaves out the real-size models (a few minutes);
the default takes about 20 minutes on 2 CPU cores, and the first time about 25 more to train
the real-size models of benchmarks/realsize.py (kept in ~/.cache/seqcli-bench). --device cuda runs the training benchmarks on the GPU instead, each in fp32 and
bf16, at the CPU's sizes and at one worth a GPU (about 10 minutes on one H200, most of it
starting the 28 processes). --markdown writes the table (with the machine it ran on) for the
README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def suite(quick: bool) -> list[list[str]]:
    steps, repeats = (["--steps", "10"], ["--repeats", "1"]) if quick else (["--steps", "20"], ["--repeats", "2"])
    runs = [["lm_throughput.py", "--size", "both", "--cell", cell, *steps, *repeats] for cell in ("lstm", "gru", "rnn")]
    return runs + [
        ["seq2seq_throughput.py", *steps, *repeats],
        ["sampling.py", "--repeats", "3" if quick else "5"],
        ["cli_startup.py", "--runs", "5" if quick else "10"],
        ["data_prep.py", "--mb", "20" if quick else "100"],
        ["plugin_cell.py", "--steps", "3" if quick else "10"],
        ["bulk.py", "--inputs", "10000" if quick else "100000"],
        ["shared_cores.py", "--steps", "50" if quick else "150"],
        ["accumulate.py", "--steps", "15" if quick else "30"],
        ["export_runner.py", "--inputs", "1000" if quick else "2000", "--repeats", "2" if quick else "3",
         *(["--no-real-size"] if quick else [])],
        ["serve.py", "--requests", "1000" if quick else "2000", "--memory-requests", "2000" if quick else "10000",
         *(["--no-real-size"] if quick else [])],
        ["int8.py", "--repeats", "1" if quick else "2", *(["--no-real-size"] if quick else [])],
        ["deploy.py", "--requests", "1000" if quick else "2000", "--repeats", "1" if quick else "2", "--int8"],
    ]


def gpu_suite(quick: bool) -> list[list[str]]:
    steps, repeats = ["--steps", "30" if quick else "100"], ["--repeats", "1"]
    runs = []
    for precision in ("fp32", "bf16"):
        where = ["--device", "cuda", "--precision", precision]
        for cell in ("lstm", "gru", "rnn"):
            runs += [["lm_throughput.py", "--size", size, "--cell", cell, *steps, *repeats, *where]
                     for size in ("small", "gpu")]
        runs.append(["seq2seq_throughput.py", *steps, *repeats, *where])
    return runs


def machine(device: str = "cpu") -> str:
    import torch

    if device == "cuda":
        return (f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores; Python {platform.python_version()}, "
                f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)")


def number(value: float, unit: str) -> str:
    if unit in ("s",):
        return f"{value:.3f} s"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def table(records: list[dict]) -> list[str]:
    lines = ["| benchmark | seqcli | baseline | ratio | unit | goal |", "|---|---:|---:|---:|---|---|"]
    for r in records:
        base = number(r["baseline"], r["unit"]) if r["baseline"] else ""
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        lines.append(f"| {r['what']} | {number(r['seqcli'], r['unit'])} | {base} | {ratio} | {r['unit']} | "
                     f"{r['goal']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        env = {**os.environ, "SEQCLI_BENCH_RECORD": str(results)}
        for argv in (gpu_suite if args.device == "cuda" else suite)(args.quick):
            print(f"\n$ python benchmarks/{' '.join(argv)}", flush=True)
            subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], env=env, check=True)
        records = [json.loads(line) for line in results.read_text().splitlines()]
    flags = (" --quick" if args.quick else "") + (" --device cuda" if args.device == "cuda" else "")
    lines = [f"Machine: {machine(args.device)}.", f"`python benchmarks/run_all.py{flags}`, "
             f"{time.strftime('%Y-%m-%d')}, {(time.perf_counter() - started) / 60:.0f} min. Ratio: seqcli / baseline "
             f"(for times, lower is better; for rates, higher).", "", *table(records)]
    print("\n" + "\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
