"""Distributed data-parallel training on torch.distributed.

`seqcli run ... --nproc-per-node N` re-runs the same command in N worker processes through
torch.distributed's elastic launcher (what `torchrun` runs). Each worker finds the launcher's
environment (RANK, WORLD_SIZE, LOCAL_RANK), joins the process group (gloo on CPU, NCCL on
CUDA), trains its shard of every batch, and DistributedDataParallel averages the gradients.
Rank 0 alone prints, logs and writes checkpoints.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass

from seqcli.errors import SeqcliError

WORKER_ENV = "SEQCLI_WORKER"  # set in the processes the launcher starts


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Context()
_context = SINGLE


def context() -> Context:
    return _context


def setup(device_name: str = "auto") -> Context:
    """Join the process group when started by a launcher (WORLD_SIZE > 1); else one process."""
    global _context
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _context.active:  # one process, or joined already
        return _context
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device_name != "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    _context = Context(dist.get_rank(), dist.get_world_size(), local_rank)
    return _context


def teardown(finished: bool = True) -> None:
    """Leave the process group (the context keeps this process's rank for its last messages).
    `finished`: every rank got here normally, so they wait for each other and leave together."""
    if _context.active:
        import torch.distributed as dist

        if dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()


def broadcast(value):
    """Rank 0's `value` on every rank."""
    if not _context.active:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value) -> list:
    """Every rank's `value`, in rank order, on every rank."""
    if not _context.active:
        return [value]
    import torch.distributed as dist

    out = [None] * _context.world
    dist.all_gather_object(out, value)
    return out


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks of a few numbers (one small all-reduce)."""
    if not _context.active:
        return values
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", _context.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def launching(nproc_per_node: int | None, nnodes: int) -> bool:
    """Whether this command starts workers: the options were given and this is not a worker."""
    return not os.environ.get("WORLD_SIZE") and (nproc_per_node is not None or nnodes != 1)


def check_options(nproc_per_node: int | None, nnodes: int, node_rank: int | None, rdzv_endpoint: str | None):
    if (nproc_per_node is not None and nproc_per_node < 1) or nnodes < 1:
        raise SeqcliError("--nproc-per-node and --nnodes must be at least 1")
    if nnodes > 1 and (rdzv_endpoint is None or node_rank is None):
        raise SeqcliError("--nnodes > 1 needs --node-rank and --rdzv-endpoint HOST:PORT (the node of rank 0)")
    if nnodes > 1 and not 0 <= node_rank < nnodes:
        raise SeqcliError(f"--node-rank {node_rank}: must be 0 to {nnodes - 1}")
    if rdzv_endpoint is not None:
        host, _, port = rdzv_endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise SeqcliError(f"--rdzv-endpoint {rdzv_endpoint!r}: expected HOST:PORT")


def check_devices(nproc_per_node: int | None, device_name: str) -> None:
    """Each worker on a GPU takes the GPU of its local rank: refuse, before any starts, more
    workers per node than this machine has GPUs (CPU workers may be any number)."""
    if device_name == "cpu" or not nproc_per_node:
        return
    import torch

    if torch.cuda.is_available() and nproc_per_node > torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise SeqcliError(f"--nproc-per-node {nproc_per_node}: each process on a GPU takes one, and this machine has "
                          f"{count}; use --nproc-per-node {count}, or train.device=cpu")


def launch(argv: list[str], nproc_per_node: int, nnodes: int = 1, node_rank: int | None = None,
           rdzv_endpoint: str | None = None) -> None:
    """Run `seqcli ARGV` in nproc_per_node worker processes on this node (times nnodes), with
    torch.distributed's elastic launcher. Returns when they finish; a failure exits with the
    failing worker's exit code (its own error line is above)."""
    check_options(nproc_per_node, nnodes, node_rank, rdzv_endpoint)
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    options = [f"--nproc-per-node={nproc_per_node}", f"--nnodes={nnodes}"]
    if nnodes > 1:
        host, _, port = rdzv_endpoint.rpartition(":")
        options += [f"--node-rank={node_rank}", f"--master-addr={host}", f"--master-port={port}"]
    args = torchrun.parse_args([*options, "--module", "seqcli", *argv])
    os.environ[WORKER_ENV] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))
    for name in list(logging.root.manager.loggerDict):  # seqcli's workers say what happened
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        torchrun.run(args)
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()]
        code = next((c for c in codes if c and c > 0), 1)
        if code >= 128 + signal.SIGINT:  # stopped by a signal: the worker said what it saved
            raise SystemExit(code) from None
        print(f"error: {len(codes)} of the worker processes failed (exit code {code}); see their messages above",
              file=sys.stderr)
        raise SystemExit(code) from None
    except SignalException as exc:
        raise SystemExit(128 + int(exc.sigval)) from None
    finally:
        os.environ.pop(WORKER_ENV, None)
