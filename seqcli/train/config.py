"""The `train:` section of a recipe. Plain data; nothing here imports torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal

from seqcli.recipe.schema import Range

Positive = Annotated[int, Range(1, 10**9)]


@dataclass
class TrainConfig:
    """Training loop settings; every field is a key of the recipe's `train:` section."""

    batch_size: Annotated[int, Range(1, 65536)] = 32
    seq_len: Annotated[int, Range(1, 65536)] = 64  # tokens per truncated-BPTT chunk (streaming tasks)
    max_steps: Positive = 1000
    optimizer: dict = field(default_factory=lambda: {"name": "adam", "lr": 0.002})
    scheduler: dict | None = None
    clip_grad_norm: Annotated[float, Range(0, lo_open=True)] | None = 5.0
    eval_every: Positive = 200
    eval_batches: Positive | None = None  # cap on batches per evaluation (None: the whole split)
    log_every: Positive = 50
    checkpoint_every: Positive | None = None  # also save last.pt between evaluations
    keep_checkpoints: Annotated[int, Range(1, 10_000)] = 1  # the last N are kept as step-N.pt
    nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/Inf loss stops the run, or skips its batch
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = False  # also log to RUN_DIR/tensorboard (needs the tensorboard package)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast matrix products to bfloat16 (weights stay fp32)

    def to_dict(self) -> dict:
        return asdict(self)
