"""Optimisers and learning-rate schedules, chosen by name in the recipe.

Each spec function's signature is the schema of its recipe keys (checked before training);
`build_*` turns the checked values into torch objects.
"""

from __future__ import annotations

from typing import Annotated

from seqcli.recipe.schema import Range

Rate = Annotated[float, Range(0, 1000, lo_open=True)]
Decay = Annotated[float, Range(0, 1)]


def sgd(lr: Rate = 0.1, momentum: Annotated[float, Range(0, 1, hi_open=True)] = 0.0,
        weight_decay: Decay = 0.0, nesterov: bool = False):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""


def adam(lr: Rate = 0.001, betas: list[Annotated[float, Range(0, 1, hi_open=True)]] = (0.9, 0.999),
         eps: Annotated[float, Range(0, 1, lo_open=True)] = 1e-8, weight_decay: Decay = 0.0):
    """Adam."""


def adamw(lr: Rate = 0.001, betas: list[Annotated[float, Range(0, 1, hi_open=True)]] = (0.9, 0.999),
          eps: Annotated[float, Range(0, 1, lo_open=True)] = 1e-8, weight_decay: Decay = 0.01):
    """Adam with decoupled weight decay."""


def step(step_size: Annotated[int, Range(1, 10**9)] = 1000, gamma: Annotated[float, Range(0, 1, lo_open=True)] = 0.5):
    """Multiply the learning rate by `gamma` every `step_size` steps."""


def plateau(factor: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.5,
            patience: Annotated[int, Range(0, 10**6)] = 2,
            min_lr: Annotated[float, Range(0)] = 0.0):
    """Multiply the learning rate by `factor` when the validation loss has not improved for
    `patience` evaluations."""


def cosine(min_lr: Annotated[float, Range(0)] = 0.0, warmup_steps: Annotated[int, Range(0, 10**9)] = 0):
    """Linear warm-up, then cosine decay to `min_lr` at `train.max_steps`."""


OPTIMIZERS = {"sgd": sgd, "adam": adam, "adamw": adamw}
SCHEDULERS = {"step": step, "plateau": plateau, "cosine": cosine}


def build_optimizer(params, spec: dict):
    import torch

    options = {k: v for k, v in spec.items() if k != "name"}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec["name"]]
    return cls(params, **options)


def build_scheduler(optimizer, spec: dict | None, max_steps: int):
    """A torch scheduler, or None. `plateau` steps on evaluations; the others on training steps."""
    import math

    import torch

    if not spec:
        return None
    name = spec["name"]
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, spec["step_size"], spec["gamma"])
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=spec["factor"], patience=spec["patience"], min_lr=spec["min_lr"]
        )
    base = optimizer.param_groups[0]["lr"]
    floor = spec["min_lr"] / base if base > 0 else 0.0
    warm = spec["warmup_steps"]

    def factor(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        progress = min(1.0, (i - warm) / max(1, max_steps - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
