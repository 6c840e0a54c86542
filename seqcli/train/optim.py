"""Optimisers and learning-rate schedules as torch objects, from the checked `train.optimizer`
and `train.scheduler` specs (their schemas are in `seqcli.config`)."""

from __future__ import annotations


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
