"""The `train:` section of a recipe: the training loop's settings. Plain data; nothing here
imports torch. The optimizer and the schedule it names are callables in `seqcli.optim`,
`train.mlflow`'s options `seqcli.tracking.MLflow`'s."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal

from seqcli.schema import Range, Seed

Positive = Annotated[int, Range(1, 10**9)]


#: `train.optimizer` when a recipe gives none; its name, when a recipe gives keys without one
DEFAULT_OPTIMIZER = {"name": "adam", "lr": 0.002}


@dataclass
class TrainConfig:
    """Training loop settings; every field is a key of the recipe's `train:` section."""

    batch_size: Annotated[int, Range(1, 65536)] = 32  # examples (or streams, for a language model) per batch
    accumulate: Annotated[int, Range(1, 4096)] = 1  # batches per optimizer step (gradient accumulation)
    seq_len: Annotated[int, Range(1, 65536)] = 64  # tokens per truncated-BPTT chunk (streaming tasks)
    max_steps: Positive | None = 1000  # the run's total steps (None: max_epochs alone decides)
    max_epochs: Positive | None = None  # also stop after this many passes over the training split
    # {name, lr, ...}: an optimizer of seqcli.optim and its settings
    optimizer: dict = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER))
    scheduler: dict | None = None  # {name, ...}: a learning-rate schedule of seqcli.optim, or none
    clip_grad_norm: Annotated[float, Range(0, lo_open=True)] | None = 5.0  # the gradients' largest global norm
    ema: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] | None = None  # evaluate an average of the weights
    eval_every: Positive = 200  # steps between evaluations on the validation split (and checkpoints)
    eval_batches: Positive | None = None  # cap on batches per evaluation (None: the whole split)
    log_every: Positive = 50  # steps between training records (loss, rate) in the console and metrics.jsonl
    checkpoint_every: Positive | None = None  # also save last.pt between evaluations
    keep_checkpoints: Annotated[int, Range(1, 10_000)] = 1  # the last N are kept as step-N.pt
    nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/Inf loss stops the run, or skips its batch
    patience: Positive | None = None  # stop after this many evaluations without a better main metric
    # the loss a step's gradient comes from: the mean over its targets, or each sequence's
    # summed loss averaged over the batch (Zaremba et al.'s code: the mean times seq_len)
    loss_reduction: Literal["token_mean", "sequence_sum"] = "token_mean"
    seed: Seed = 0  # the seed of every random draw: the same recipe and seed train the same model
    device: str = "auto"  # auto (cuda when there is one), cpu, cuda, cuda:N
    tensorboard: bool = False  # also log to RUN_DIR/tensorboard (needs the tensorboard package)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast matrix products to bfloat16 (weights stay fp32)
    compile: bool = False  # torch.compile each step-by-step cell's `step` (cells without a fused kernel)
    threads: Annotated[int, Range(1, 1024)] | None = None  # compute threads (None: the cores, shared among local processes)
    mlflow: dict | None = None  # also log to MLflow: {tracking_uri, experiment, run_name, export} (seqcli.tracking)

    def to_dict(self) -> dict:
        return asdict(self)
