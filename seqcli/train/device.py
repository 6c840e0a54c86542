"""Where training runs and what seeds it: the device a recipe names, and the random seeds."""

from __future__ import annotations

import random
import re

import torch

from seqcli.errors import SeqcliError
from seqcli.train import distributed


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'. A distributed
    worker on CUDA takes the GPU of its local rank."""
    ctx = distributed.context()
    if name == "auto" or (ctx.active and name == "cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda", ctx.local_rank) if ctx.active else torch.device("cuda")
        if name == "auto":
            return torch.device("cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", name):
        raise SeqcliError(f"device {name!r}: must be auto, cpu, cuda, cuda:N or mps")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise SeqcliError(f"device {name!r}: no such CUDA device here (use auto or cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SeqcliError(f"device {name!r}: MPS is not available here (use auto or cpu)")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
