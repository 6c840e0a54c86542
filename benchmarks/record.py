"""Results for the performance suite: each benchmark prints its own table and, when run by
`benchmarks/run_all.py`, also appends one JSON line per comparison to $SEQCLI_BENCH_RECORD."""

from __future__ import annotations

import json
import os


def record(benchmark: str, what: str, seqcli: float, baseline: float | None, unit: str, goal: str = "") -> None:
    path = os.environ.get("SEQCLI_BENCH_RECORD")
    if not path:
        return
    entry = {"benchmark": benchmark, "what": what, "seqcli": seqcli, "baseline": baseline, "unit": unit,
             "ratio": seqcli / baseline if baseline else None, "goal": goal}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
