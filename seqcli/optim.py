"""Optimisers and learning-rate schedules: `train.optimizer` and `train.scheduler`.

Each is one callable: its signature is its recipe keys (checked like a plugin's, with their
bounds), and its body builds it. A schedule also checks the keys that must agree with each
other; called without an optimizer, it only checks (what validating a recipe does).

    train:
      optimizer: {name: adam, lr: 0.002}        # adam(params, lr=0.002)
      scheduler: {name: cosine, warmup_steps: 100}
"""

from __future__ import annotations

import contextlib
import math
from typing import Annotated

import torch

from seqcli.errors import ConfigError
from seqcli.schema import Range

Positive = Annotated[int, Range(1, 10**9)]
Rate = Annotated[float, Range(0, 1000, lo_open=True)]
Decay = Annotated[float, Range(0, 1)]
Beta = Annotated[float, Range(0, 1, hi_open=True)]
Gamma = Annotated[float, Range(0, 1, lo_open=True)]
Start = Annotated[int, Range(1, 10**9)]


# -- optimisers: (params, **keys) -> torch.optim.Optimizer --------------------------------------

def sgd(params, lr: Rate = 0.1, momentum: Annotated[float, Range(0, 1, hi_open=True)] = 0.0,
        weight_decay: Decay = 0.0, nesterov: bool = False):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""
    if nesterov and momentum == 0:
        raise ConfigError("nesterov", "needs momentum > 0")
    return None if params is None else torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                                                       nesterov=nesterov)


def adam(params, lr: Rate = 0.001, betas: tuple[Beta, Beta] = (0.9, 0.999),
         eps: Annotated[float, Range(0, 1, lo_open=True)] = 1e-8, weight_decay: Decay = 0.0):
    """Adam."""
    return None if params is None else torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps,
                                                        weight_decay=weight_decay)


def adamw(params, lr: Rate = 0.001, betas: tuple[Beta, Beta] = (0.9, 0.999),
          eps: Annotated[float, Range(0, 1, lo_open=True)] = 1e-8, weight_decay: Decay = 0.01):
    """Adam with decoupled weight decay."""
    return None if params is None else torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps,
                                                         weight_decay=weight_decay)


def ntasgd(params, lr: Rate = 30.0, weight_decay: Decay = 0.0, nonmono: Annotated[int, Range(1, 10**6)] = 5):
    """Non-monotonically triggered averaged SGD (AWD-LSTM): SGD until the validation loss is
    worse than the best of all but the last `nonmono` evaluations, then SGD with the weights
    averaged from there on; the average is evaluated, saved for sampling and kept."""
    return None if params is None else NTASGD(params, lr=lr, weight_decay=weight_decay, nonmono=nonmono)


OPTIMIZERS = {"sgd": sgd, "adam": adam, "adamw": adamw, "ntasgd": ntasgd}

# What the optimizers' and schedulers' settings mean (`train.optimizer: {name, ...}`,
# `train.scheduler: {name, ...}`): the documentation's reference of recipe keys reads them.
KEYS = {
    "lr": "the learning rate",
    "momentum": "the share of the last update kept in the next (0: none)",
    "weight_decay": "L2 penalty on the weights (decoupled from the gradient in adamw)",
    "nesterov": "Nesterov's momentum (needs momentum > 0)",
    "betas": "the decay rates of the running means of the gradient and of its square",
    "eps": "added to the denominator for numerical stability",
    "nonmono": "evaluations without a better validation loss before averaging starts",
    "step_size": "steps between decays",
    "every_epochs": "epochs between decays (in place of step_size)",
    "start_step": "the step of the first decay",
    "start_epoch": "the epoch at whose start the first decay comes (epochs count from 1)",
    "gamma": "what the learning rate is multiplied by at each decay",
    "steps": "the steps at which the learning rate is multiplied by gamma",
    "epochs": "the epochs at whose start the learning rate is multiplied by gamma",
    "factor": "what the learning rate is multiplied by when the validation loss stops improving",
    "patience": "evaluations without a better validation loss before the rate is cut",
    "min_lr": "the lowest learning rate",
    "warmup_steps": "steps over which the rate rises linearly from 0 before it decays",
}
AVERAGING = {"ntasgd"}  # optimizers that average the weights themselves: train.ema would average an average


class Averaging:
    """Weights averaged while training: `train.ema`'s EMA and the `ntasgd` optimizer. The
    average is what is evaluated, saved as a checkpoint's model and left in the model when
    training ends; the training weights, with what the averaging counts, are its state, which
    a checkpoint keeps in a field of its own (`average`: {kind, state}). What the trainer and
    the checkpoint ask of either, and all they ask."""

    KIND = ""  # the name its state is stored under (AVERAGES)

    @property
    def active(self) -> bool:
        """Whether there is an average yet (a checkpoint's model is then the average)."""
        return True

    def update(self) -> None:
        """After each optimizer step."""

    def observe(self, valid_loss: float) -> str | None:
        """After each evaluation: why averaging starts now, or None."""
        return None

    def averaged(self):
        """The average in the model for the block; the training weights back after it."""
        raise NotImplementedError

    def finish(self) -> None:
        """Training is over: the model keeps the average."""
        raise NotImplementedError

    def average_state(self) -> dict:
        """What resuming needs beyond the model (which holds the average): the training
        weights and the averaging's counters."""
        raise NotImplementedError

    def load_average_state(self, state: dict) -> None:
        """After the model was loaded with the average: the training weights come back."""
        raise NotImplementedError

    @classmethod
    def state_problem(cls, state, shapes: list | None = None) -> str | None:
        """What is wrong with a stored `average_state()` (None: nothing); `shapes`: the
        shapes its training weights must have, where known (`averaged_shapes`)."""
        raise NotImplementedError

    @classmethod
    def averaged_shapes(cls, optimizer_state: dict, params: list) -> list:
        """The shapes of the parameters it averages, given a stored optimizer state: all of them."""
        return [p.shape for p in params]


class NTASGD(torch.optim.Optimizer, Averaging):
    """Non-monotonically triggered averaged SGD (Merity et al., 2017): plain SGD until the
    validation loss is worse than the best of all but the last `nonmono` evaluations, then
    SGD whose weights are averaged from that step on; the average is what is evaluated,
    saved for sampling and left in the model when training ends (`averaged()`, `finish()`).

    Its optimizer state (`state_dict`) holds each weight's running average; its averaging
    state (`average_state`) the evaluations seen, the step averaging began after and the
    weights training continues from: a checkpoint's model holds the average."""

    KIND = "ntasgd"

    def __init__(self, params, lr: float = 30.0, weight_decay: float = 0.0, nonmono: int = 5):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.nonmono = nonmono
        self.history: list[float] = []  # validation losses, one per evaluation
        self.averaging_since: int | None = None  # the optimizer step averaging began after
        self.steps = 0

    @property
    def averaging(self) -> bool:
        return self.averaging_since is not None

    @property
    def active(self) -> bool:
        return self.averaging

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

    def observe(self, valid_loss: float) -> str | None:
        """Record an evaluation; why the averaging starts, when it does."""
        self.history.append(float(valid_loss))
        if not self.averaging and len(self.history) > self.nonmono and \
                self.history[-1] > min(self.history[: -self.nonmono]):
            self.averaging_since = self.steps
            return (f"valid loss {valid_loss:.4f} is worse than the best before the last {self.nonmono} evaluations: "
                    f"averaging the weights from here on (NT-ASGD)")
        return None

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

    def average_state(self) -> dict:
        return {"history": list(self.history), "averaging_since": self.averaging_since, "steps": self.steps,
                "weights": [p.detach().clone() for p, _ in self._pairs()]}

    @classmethod
    def averaged_shapes(cls, optimizer_state: dict, params: list) -> list:
        """Those whose optimizer state holds a running average (all, or none before averaging)."""
        indices = [i for group in optimizer_state["param_groups"] for i in group["params"]]
        shapes = dict(zip(indices, (p.shape for p in params)))
        return [shapes[i] for i in sorted(optimizer_state["state"]) if "average" in optimizer_state["state"][i]]

    @classmethod
    def state_problem(cls, state, shapes: list | None = None) -> str | None:
        def number(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def count(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62

        if not (isinstance(state, dict) and isinstance(state.get("history", []), list)
                and all(number(v) for v in state.get("history", [])) and count(state.get("steps", 0))
                and (state.get("averaging_since") is None or count(state["averaging_since"]))
                and isinstance(state.get("weights", []), list)
                and all(isinstance(w, torch.Tensor) for w in state.get("weights", []))):
            return "must be {history, averaging_since, steps, weights}"
        if shapes is not None and [tuple(w.shape) for w in state.get("weights", [])] != [tuple(s) for s in shapes]:
            return "its weights do not fit the averaged parameters"
        return None

    def load_average_state(self, state: dict) -> None:
        """After the model was loaded (with the average) and the optimizer state (with the
        running averages): the training weights come back."""
        self.history = [float(v) for v in state.get("history", [])]
        self.averaging_since, self.steps = state.get("averaging_since"), int(state.get("steps", 0))
        pairs = list(self._pairs())
        weights = state.get("weights", [])
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


# -- schedules: (optimizer, total_steps, **keys) -> a Schedule, ReduceLROnPlateau, or None ------

def step(optimizer, total_steps: int, step_size: Positive | None = None, every_epochs: Positive | None = None,
         start_step: Start | None = None, start_epoch: Start | None = None, gamma: Gamma = 0.5):
    """Multiply the learning rate by `gamma` every `step_size` steps or every `every_epochs`
    epochs (1000 steps when neither is given). The first decay comes after the first period,
    or at `start_step` / at the start of epoch `start_epoch` (epochs count from 1):
    `{start_epoch: 5, every_epochs: 1, gamma: 0.5}` trains epochs 1-4 at the full rate, then
    halves it at the start of every epoch from the 5th on."""
    if step_size is not None and every_epochs is not None:
        raise ConfigError("every_epochs", "give step_size (steps) or every_epochs, not both")
    if every_epochs is not None and start_step is not None:
        raise ConfigError("start_step", "an every_epochs schedule starts at an epoch: use start_epoch")
    if step_size is not None and start_epoch is not None:
        raise ConfigError("start_epoch", "a step_size schedule starts at a step: use start_step, or every_epochs "
                                         "with start_epoch")
    if optimizer is None:
        return None
    if every_epochs is not None or (step_size is None and start_epoch is not None):
        every = every_epochs or 1
        first = start_epoch or every + 1

        def factor(step, epoch):  # epoch + 1: the epoch being trained, counting from 1
            return gamma ** (0 if epoch + 1 < first else 1 + (epoch + 1 - first) // every)
    else:
        every = step_size or 1000
        first = start_step or every

        def factor(step, epoch):
            return gamma ** (0 if step < first else 1 + (step - first) // every)

    return Schedule(optimizer, factor)


def milestones(optimizer, total_steps: int, steps: list[Start] | None = None, epochs: list[Start] | None = None,
               gamma: Gamma = 0.1):
    """Multiply the learning rate by `gamma` at each of the given steps, or at the start of
    each of the given epochs (counting from 1)."""
    given = [(name, marks) for name, marks in (("steps", steps), ("epochs", epochs)) if marks is not None]
    if len(given) != 1:
        raise ConfigError("steps", "give the milestones as steps: [...] or as epochs: [...] (one of them)")
    name, marks = given[0]
    if not marks or list(marks) != sorted(set(marks)):
        raise ConfigError(name, f"must be increasing, without repeats, got {marks}")
    if optimizer is None:
        return None
    if epochs is not None:
        return Schedule(optimizer, lambda step, epoch: gamma ** sum(1 for m in marks if epoch + 1 >= m))
    return Schedule(optimizer, lambda step, epoch: gamma ** sum(1 for m in marks if step >= m))


def plateau(optimizer, total_steps: int, factor: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.5,
            patience: Annotated[int, Range(0, 10**6)] = 2, min_lr: Annotated[float, Range(0)] = 0.0):
    """Multiply the learning rate by `factor` when the validation loss has not improved for
    `patience` evaluations."""
    if optimizer is None:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience,
                                                      min_lr=min_lr)


def cosine(optimizer, total_steps: int, min_lr: Annotated[float, Range(0)] = 0.0,
           warmup_steps: Annotated[int, Range(0, 10**9)] = 0):
    """Linear warm-up, then cosine decay to `min_lr` at the run's last step (train.max_steps,
    or max_epochs times the batches per epoch)."""
    if optimizer is None:
        return None
    base = optimizer.param_groups[0]["lr"]
    floor = min_lr / base if base > 0 else 0.0

    def factor(step: int, epoch: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return Schedule(optimizer, factor)


SCHEDULERS = {"step": step, "milestones": milestones, "plateau": plateau, "cosine": cosine}


class EMA(Averaging):
    """An exponential moving average of the weights (`train.ema: DECAY`), updated after every
    optimizer step: average = d * average + (1 - d) * weights, with d = min(DECAY, (1 + t) /
    (10 + t)) at the t-th update, so early averages are not held back by the initial weights.
    As with NT-ASGD, the average is what is evaluated, saved in a checkpoint's model and left
    in the model when training ends; a checkpoint keeps the training weights too (its
    `average` field), so resuming is exact."""

    KIND = "ema"

    def __init__(self, params, decay: float):
        self.params, self.decay, self.updates = list(params), decay, 0
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, p in zip(self.average, self.params):
            average.lerp_(p.detach(), 1 - d)

    @contextlib.contextmanager
    def averaged(self):
        """The average in the model for the block; the training weights back after it."""
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, average in zip(self.params, self.average):
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, weights in zip(self.params, saved):
                    p.copy_(weights)

    def finish(self) -> None:
        """Training is over: the model keeps the average."""
        with torch.no_grad():
            for p, average in zip(self.params, self.average):
                p.copy_(average)

    def average_state(self) -> dict:
        """The training weights (the checkpoint's model holds the average) and the count."""
        return {"decay": self.decay, "updates": self.updates, "weights": [p.detach().clone() for p in self.params]}

    def load_average_state(self, state: dict) -> None:
        """After the model was loaded with the average: it becomes the average again, and the
        model gets the training weights back."""
        with torch.no_grad():
            self.average = [p.detach().clone() for p in self.params]
            for p, weights in zip(self.params, state["weights"]):
                p.copy_(weights)
        self.updates = int(state["updates"])

    @classmethod
    def state_problem(cls, state, shapes: list | None = None) -> str | None:
        if not (isinstance(state, dict) and isinstance(state.get("updates"), int) and state["updates"] >= 0
                and isinstance(state.get("weights"), list)
                and all(isinstance(w, torch.Tensor) for w in state["weights"])):
            return "must be {decay, updates, weights}"
        if shapes is not None and [tuple(w.shape) for w in state["weights"]] != [tuple(s) for s in shapes]:
            return "its weights do not fit the model's parameters"
        return None


AVERAGES = {"ema": EMA, "ntasgd": NTASGD}  # a checkpoint's average.kind -> what reads its state


def hyperparameters(spec: dict) -> dict:
    """An optimizer spec's settings, defaults included: those of a parameter group of the
    optimizer it builds (on a stand-in parameter)."""
    try:
        optimizer = build(spec, OPTIMIZERS, [torch.nn.Parameter(torch.zeros(1))])
    except Exception:  # noqa: BLE001 - a spec this seqcli cannot build: compared as written
        return {k: v for k, v in spec.items() if k != "name"}
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}


def build(spec: dict | None, table: dict, *args):
    """A checked `{name, **keys}` spec -> what its callable builds (None for no spec)."""
    if not spec:
        return None
    return table[spec["name"]](*args, **{k: v for k, v in spec.items() if k != "name"})
