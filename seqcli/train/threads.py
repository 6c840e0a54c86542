"""How many compute threads a process uses: `train.threads` / `--threads`, or a default that
does not oversubscribe the machine.

torch starts one compute thread per core. Two processes that each do so on the same cores
wait on each other's threads: on a 2-core machine one LSTM step measured 10.7 ms alone with 2
threads, 259 ms with 2 threads beside another training, 42 ms with 1 thread beside it
(`benchmarks/shared_cores.py`). So the default is the cores this process may use, divided by
the processes started on this machine together: the local processes of a distributed run
(`LOCAL_WORLD_SIZE`, which torchrun and `--nproc-per-node` set); a sweep gives its parallel
workers their share with `--threads`. An `OMP_NUM_THREADS` set by the user is respected as a request.
"""

from __future__ import annotations

import os


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: the most compute threads a process takes (train.threads, --threads, OMP_NUM_THREADS)
MAX_THREADS = 1024


def default_threads() -> int:
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit():
        n = int(requested) if len(requested) <= 8 else MAX_THREADS + 1
        if n > MAX_THREADS:  # torch.set_num_threads(99999) crashes the process
            from seqcli.errors import SeqcliError

            shown = requested if len(requested) <= 12 else requested[:12] + "..."
            raise SeqcliError(f"OMP_NUM_THREADS={shown}: at most {MAX_THREADS} compute threads; set it lower, or "
                              f"give --threads")
        if n > 0:
            return n
    sharing = 1
    for name in ("LOCAL_WORLD_SIZE",):
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
