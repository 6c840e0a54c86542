"""Start-up time of `seqcli --help` against a bare `python -c pass` (goal: under 0.3 s).

    python benchmarks/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def timed(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    bare = timed([sys.executable, "-c", "pass"], args.runs)
    help_ = timed([sys.executable, "-m", "seqcli", "--help"], args.runs)
    imports = timed([sys.executable, "-c", "import sys, seqcli.cli; assert 'torch' not in sys.modules"], args.runs)
    print(f"median of {args.runs} runs")
    print(f"python -c pass        {bare:.3f} s")
    print(f"seqcli --help         {help_:.3f} s   (goal < 0.300 s; ratio to bare python {help_ / bare:.1f}x)")
    print(f"import seqcli.cli     {imports:.3f} s   (torch not imported)")
    record("cli_startup", "`seqcli --help` start-up (vs `python -c pass`)", help_, bare, "s", "< 0.3 s")


if __name__ == "__main__":
    main()
