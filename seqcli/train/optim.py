"""Optimisers and learning-rate schedules as torch objects, from the checked `train.optimizer`
and `train.scheduler` specs (their schemas are in `seqcli.config`)."""

from __future__ import annotations


import contextlib

import torch


def build_optimizer(params, spec: dict):
    options = {k: v for k, v in spec.items() if k != "name"}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "ntasgd": NTASGD}[spec["name"]]
    return cls(params, **options)


class NTASGD(torch.optim.Optimizer):
    """Non-monotonically triggered averaged SGD (Merity et al., 2017): plain SGD until the
    validation loss is worse than the best of all but the last `nonmono` evaluations, then
    SGD whose weights are averaged from that step on; the average is what is evaluated,
    saved for sampling and left in the model when training ends (`averaged()`, `finish()`).

    Its state (in `state_dict`) holds each weight's average and, while averaging, a copy of
    the weights training continues from: a checkpoint's model holds the average."""

    def __init__(self, params, lr: float = 30.0, weight_decay: float = 0.0, nonmono: int = 5):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.nonmono = nonmono
        self.history: list[float] = []  # validation losses, one per evaluation
        self.averaging_since: int | None = None  # the optimizer step averaging began after
        self.steps = 0

    @property
    def averaging(self) -> bool:
        return self.averaging_since is not None

    @torch.no_grad()
    def step(self, closure=None):
        self.steps += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"])
                p.add_(grad, alpha=-group["lr"])
                if self.averaging:
                    state = self.state[p]
                    count = self.steps - self.averaging_since
                    if "average" not in state:
                        state["average"] = p.detach().clone()
                    else:
                        state["average"].add_(p - state["average"], alpha=1 / count)

    def observe(self, valid_loss: float) -> bool:
        """Record an evaluation; True when it starts the averaging."""
        self.history.append(float(valid_loss))
        if not self.averaging and len(self.history) > self.nonmono and \
                self.history[-1] > min(self.history[: -self.nonmono]):
            self.averaging_since = self.steps
            return True
        return False

    def _pairs(self):
        for group in self.param_groups:
            for p in group["params"]:
                average = self.state[p].get("average")
                if average is not None:
                    yield p, average

    @contextlib.contextmanager
    def averaged(self):
        """The averaged weights in the model for the block (nothing changes before averaging)."""
        saved = [(p, p.detach().clone()) for p, _ in self._pairs()]
        with torch.no_grad():
            for p, average in self._pairs():
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, weights in saved:
                    p.copy_(weights)

    def finish(self) -> None:
        """Training is over: the model keeps the averaged weights."""
        with torch.no_grad():
            for p, average in self._pairs():
                p.copy_(average)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["ntasgd"] = {"history": list(self.history), "averaging_since": self.averaging_since,
                           "steps": self.steps, "weights": [p.detach().clone() for p, _ in self._pairs()]}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """After the model was loaded (with the average): the training weights come back."""
        state_dict = dict(state_dict)
        extra = state_dict.pop("ntasgd", None) or {}
        super().load_state_dict(state_dict)
        self.history = [float(v) for v in extra.get("history", [])]
        self.averaging_since, self.steps = extra.get("averaging_since"), int(extra.get("steps", 0))
        pairs = list(self._pairs())
        weights = extra.get("weights", [])
        if len(weights) != len(pairs):
            raise ValueError("the averaged SGD state does not fit this model")
        with torch.no_grad():
            for (p, _), w in zip(pairs, weights):
                p.copy_(w)


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
