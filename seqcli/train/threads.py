"""How many compute threads a process uses: `train.threads` / `--threads`, or a default that
does not oversubscribe the machine.

torch starts one compute thread per core. Two processes that each do so on the same cores
wait on each other's threads: on a 2-core machine one LSTM step measured 10.7 ms alone with 2
threads, 259 ms with 2 threads beside another training, 42 ms with 1 thread beside it
(`benchmarks/shared_cores.py`). So the default is the cores this process may use, divided by
the processes started on this machine together: the local processes of a distributed run
(`LOCAL_WORLD_SIZE`, which torchrun and `--nproc-per-node` set); a sweep gives its parallel
workers their share with `--threads`. An `OMP_NUM_THREADS` set by the user is respected as a request.

Processes started by hand still share cores (a training, and a few `seqcli sample` commands
beside it). What makes that costly is how long an idle OpenMP thread spins before it sleeps:
libgomp's default is 300,000 spins, so each process's idle threads keep the cores the others'
working threads need (a 2x200 LSTM word model on 2 cores: 9,565 tokens/s alone, 1,499 beside
two tiny trainings). The `seqcli` command therefore sets `GOMP_SPINCOUNT` to 1000, the spin
libgomp itself falls back to when it knows the cores are oversubscribed, before torch starts
(`quiet_waits`): beside the same two, 3,958 tokens/s, and 9,180 alone (0.96x; medians of 3,
`benchmarks/shared_cores.py --beside`). A user's `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` is kept.
"""

from __future__ import annotations

import os


SPIN_COUNT = "1000"


def quiet_waits(environ=os.environ) -> None:
    """Before torch is imported: idle compute threads sleep after a short spin (see above),
    unless the user chose how they wait."""
    if "GOMP_SPINCOUNT" not in environ and "OMP_WAIT_POLICY" not in environ:
        environ["GOMP_SPINCOUNT"] = SPIN_COUNT


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
