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


class Schedule:
    """A learning rate that is a function of the step and the epoch: each parameter group's
    rate is its base rate times `factor(step, epoch)`, where `step` counts the steps taken
    before this one and `epoch` the epochs completed. Being a function of the two counters, it
    resumes exactly from them; the state is only the base rates."""

    def __init__(self, optimizer, factor):
        self.optimizer, self.factor = optimizer, factor
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.apply(0, 0)

    def apply(self, step: int, epoch: int) -> None:
        scale = self.factor(step, epoch)
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * scale

    def state_dict(self) -> dict:
        return {"base": list(self.base)}

    def load_state_dict(self, state: dict) -> None:
        base = state.get("base", state.get("base_lrs"))  # base_lrs: a torch scheduler's (older runs)
        if not isinstance(base, list) or len(base) != len(self.base):
            raise ValueError("the schedule's state does not fit this optimizer")
        self.base = [float(b) for b in base]


def build_scheduler(optimizer, spec: dict | None, total_steps: int):
    """A `Schedule`, torch's ReduceLROnPlateau (stepped on evaluations), or None."""
    import math

    import torch

    if not spec:
        return None
    name = spec["name"]
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=spec["factor"], patience=spec["patience"], min_lr=spec["min_lr"]
        )
    gamma = spec.get("gamma")
    if name == "step":
        if spec.get("every_epochs") is not None:
            every, first = spec["every_epochs"], spec.get("start_epoch") or spec["every_epochs"] + 1

            def factor(step, epoch):  # epoch + 1: the epoch being trained, counting from 1
                return gamma ** (0 if epoch + 1 < first else 1 + (epoch + 1 - first) // every)
        else:
            every, first = spec["step_size"], spec.get("start_step") or spec["step_size"]

            def factor(step, epoch):
                return gamma ** (0 if step < first else 1 + (step - first) // every)

        return Schedule(optimizer, factor)
    if name == "milestones":
        if spec.get("epochs") is not None:
            marks = spec["epochs"]
            return Schedule(optimizer, lambda step, epoch: gamma ** sum(1 for m in marks if epoch + 1 >= m))
        marks = spec["steps"]
        return Schedule(optimizer, lambda step, epoch: gamma ** sum(1 for m in marks if step >= m))
    base = optimizer.param_groups[0]["lr"]
    floor = spec["min_lr"] / base if base > 0 else 0.0
    warm = spec["warmup_steps"]

    def cosine(step: int, epoch: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return Schedule(optimizer, cosine)
