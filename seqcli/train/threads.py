"""How many compute threads a process uses: `train.threads` / `--threads`, or a default that
does not oversubscribe the machine.

torch starts one compute thread per core. Two processes that each do so on the same cores
wait on each other's threads: on a 2-core machine one LSTM step measured 10.7 ms alone with 2
threads, 259 ms with 2 threads beside another training, 42 ms with 1 thread beside it
(`benchmarks/shared_cores.py`). So the default is the cores this process may use, divided by
the processes started on this machine together: the local processes of a distributed run
(`LOCAL_WORLD_SIZE`, which torchrun and `--nproc-per-node` set) or the parallel trials of a
sweep (`SEQCLI_PARALLEL`). An `OMP_NUM_THREADS` set by the user is respected as a request.
"""

from __future__ import annotations

import os


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    sharing = 1
    for name in ("LOCAL_WORLD_SIZE", "SEQCLI_PARALLEL"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            sharing *= int(value)
    return max(1, cores() // sharing)


def use_threads(requested: int | None) -> int:
    """Set torch's compute threads: `requested`, or the default. Returns the number."""
    import torch

    n = requested or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
