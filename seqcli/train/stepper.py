"""The one training step, for every loop that trains (the trainer, `seqcli gradflow`, the
contract kits), evaluation, and the checks of a step's state restored from a checkpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch

from seqcli import optim
from seqcli.api import Data, StepResult, Task, TrainConfig, device_of
from seqcli.errors import CheckpointError, TrainingError
from seqcli.train.checkpoint import Checkpoint


class Stepper:
    """The one training step, for every loop that trains (the trainer, `seqcli gradflow`, the
    contract kits): the task's forward under autocast, then backward, the gradient norm,
    clipping, and the optimizer step, taken only when the gradient is finite. The learning
    rate follows the schedule at (`step`, `epoch`): steps taken before this one, epochs
    completed; the trainer sets them, other loops leave them counting steps."""

    def __init__(self, task: Task, model: torch.nn.Module, config: TrainConfig, device: torch.device | None = None,
                 replicas: torch.nn.Module | None = None, total: int | None = None):
        self.task, self.model, self.config, self.replicas = task, model, config, replicas
        self.device = device if device is not None else device_of(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optim.build(config.optimizer, optim.OPTIMIZERS, self.params)
        self.scheduler = optim.build(config.scheduler, optim.SCHEDULERS, self.optimizer, total or config.max_steps or 1)
        self.plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.ema = optim.EMA(self.params, config.ema) if config.ema else None
        self.step, self.epoch = 0, 0

    def forward(self, batch, carry) -> StepResult:
        self.model.train()
        with autocast(self.device, self.config.precision):
            if self.replicas is not None:
                return self.replicas(batch, carry)
            return self.task.train_step(self.model, batch, carry)

    def update(self, result: StepResult, clip: float | None | bool = True) -> float:
        """Backward, then the optimizer step unless the gradient is not finite. Returns the
        total gradient norm before clipping. `clip` overrides train.clip_grad_norm."""
        self.begin()
        self.backward(result)
        return self.take(clip=clip)

    def begin(self) -> None:
        """A new step: gradients cleared, the learning rate set by the schedule."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None and not self.plateau:
            self.scheduler.apply(self.step, self.epoch)

    def backward(self, result: StepResult, weighted: bool = False) -> float:
        """Back-propagate a batch's objective: its loss (each sequence's summed loss, averaged
        over the batch, for loss_reduction=sequence_sum) plus its penalty. `weighted`: times
        what the loss averages over (targets, or sequences), which is returned, so that
        several batches' gradients divided by their total are one batch's (`take(divide=)`)."""
        loss, weight = result.loss, float(result.targets)
        if self.config.loss_reduction == "sequence_sum":  # each sequence's summed loss, averaged over the batch
            if not result.sequences:
                raise TrainingError(f"train.loss_reduction=sequence_sum: task {type(self.task).__name__} does not "
                                    f"say how many sequences its loss averages over (StepResult.sequences)")
            loss, weight = loss * (result.targets / result.sequences), float(result.sequences)
        if result.penalty is not None:
            loss = loss + result.penalty
        (loss * weight if weighted else loss).backward()
        return weight if weighted else 1.0

    def take(self, divide: float | None = None, clip: float | None | bool = True) -> float:
        """The optimizer step on the gradients gathered since `begin` (divided by `divide`
        first), unless they are not finite; the total gradient norm before clipping."""
        max_norm = self.config.clip_grad_norm if clip is True else clip or None
        if divide is not None and divide != 1.0:
            for p in self.params:
                if p.grad is not None:
                    p.grad.div_(divide)
        if max_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm).item()
        else:
            grads = [p.grad for p in self.params if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads).item() if grads else 0.0
        if math.isfinite(norm):
            self.optimizer.step()
            if self.averaging is not None:
                self.averaging.update()
        self.step += 1
        return norm

    # -- averaged weights (NT-ASGD's, train.ema's) ---------------------------------------------

    @property
    def averaging(self) -> optim.Averaging | None:
        """What averages the weights (train.ema, or an averaging optimizer), if anything does."""
        if self.ema is not None:
            return self.ema
        return self.optimizer if isinstance(self.optimizer, optim.Averaging) else None

    @property
    def saves_average(self) -> bool:
        """Whether a checkpoint's model is an average of the weights rather than the weights."""
        return self.averaging is not None and self.averaging.active

    def averaged(self):
        """The averaged weights in the model for the block, if there are any."""
        return self.averaging.averaged() if self.averaging is not None else contextlib.nullcontext()

    def finish(self) -> None:
        """Training is over: the model keeps the averaged weights, if there are any."""
        if self.averaging is not None:
            self.averaging.finish()

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def average_state(self) -> dict | None:
        """A checkpoint's `average` field: {kind, state} of what averages the weights, if anything does."""
        if self.averaging is None:
            return None
        return {"kind": self.averaging.KIND, "state": self.averaging.average_state()}

    def load_state_dict(self, state: dict, average: dict | None, optimizer: bool = True) -> None:
        """After the model was loaded from a checkpoint (with the average, if it was saved).
        `optimizer`: False when the optimizer changed, whose state then starts afresh."""
        if optimizer:
            self.optimizer.load_state_dict(state)
        averaging = self.averaging
        if averaging is not None and average is not None and average["kind"] == averaging.KIND \
                and (optimizer or averaging is self.ema):  # a rebuilt optimizer's own average starts afresh
            averaging.load_average_state(average["state"])
        elif self.ema is not None:  # train.ema added on resume: the average starts from here
            self.ema = optim.EMA(self.params, self.config.ema)


def fit_optimizer_state(ckpt: Checkpoint, params: list) -> None:
    """The optimizer state's tensors have the shapes of the parameters they belong to (torch
    does not check; a wrong one would fail inside the first optimizer step)."""
    groups = ckpt.optimizer["param_groups"]
    indices = [i for group in groups for i in group["params"]]
    if len(indices) != len(params):
        raise CheckpointError(f"{ckpt.path}: the optimizer state has {len(indices)} parameters, the model "
                              f"{len(params)}; it does not fit this model")
    shapes = dict(zip(indices, (p.shape for p in params)))
    for index, entry in ckpt.optimizer["state"].items():
        if index not in shapes:
            raise CheckpointError(f"{ckpt.path}: damaged checkpoint: optimizer state for parameter {index}, "
                                  f"which no group lists")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != shapes[index]:
                raise CheckpointError(f"{ckpt.path}: damaged checkpoint: optimizer state {index}.{name} has shape "
                                      f"{tuple(value.shape)}, its parameter {tuple(shapes[index])}")
    if ckpt.average is not None:
        kind = optim.AVERAGES[ckpt.average["kind"]]
        problem = kind.state_problem(ckpt.average["state"], kind.averaged_shapes(ckpt.optimizer, params))
        if problem:
            raise CheckpointError(f"{ckpt.path}: damaged checkpoint: average: {problem}")


def check_optimizer_values(ckpt: Checkpoint, configured: list[dict]) -> None:
    """Each restored optimizer setting is a value of the kind this optimizer was built with (a
    bool, a finite number of the same sign, a sequence of as many), and each `step` a finite
    count >= 0: a crafted checkpoint is one line, not a traceback in the first step."""
    def like(value, expected) -> bool:
        if isinstance(expected, bool):
            return isinstance(value, bool) or value is None
        if expected is None:
            return value is None or isinstance(value, bool) or \
                (isinstance(value, (int, float)) and math.isfinite(value))
        if isinstance(expected, (int, float)):
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and (value >= 0 or expected < 0)
        if isinstance(expected, (tuple, list)):
            return isinstance(value, (tuple, list)) and len(value) == len(expected) and \
                all(like(v, e) for v, e in zip(value, expected))
        if isinstance(expected, str):
            return isinstance(value, str)
        return True

    for i, (group, wanted) in enumerate(zip(ckpt.optimizer["param_groups"], configured)):
        for key, expected in wanted.items():
            if key in group and not like(group[key], expected):
                raise CheckpointError(f"{ckpt.path}: damaged checkpoint: optimizer param_groups.{i}.{key} is "
                                      f"{str(group[key])[:60]!r}, not a value like {expected!r}")
    for index, entry in ckpt.optimizer["state"].items():
        step = entry.get("step")
        if step is None:
            continue
        value = step.item() if isinstance(step, torch.Tensor) and step.numel() == 1 else step
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise CheckpointError(f"{ckpt.path}: damaged checkpoint: optimizer state {index}.step is "
                                  f"{str(value)[:60]!r}, not a count of steps")


def autocast(device: torch.device, precision: str):
    """bf16: run the forward pass under autocast (matrix products in bfloat16, reductions and
    losses in float32; the weights and the optimizer stay float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def evaluate(task: Task, model: torch.nn.Module, data: Data, split: str, config: TrainConfig,
             options: dict | None = None, capped: bool = False) -> dict:
    """`task.evaluate` on one split, in eval mode without gradients (under autocast when the
    run trains in bf16), with the task's own evaluate options.

    The whole split is scored, and the result says how much of it (`examples`, or `tokens`
    for a stream); `train.eval_batches` caps only the evaluations made while training
    (`capped=True`), where a quick look at the validation loss is the point."""
    from seqcli.errors import DataError

    if split not in data.splits:
        raise DataError(f"--split: the dataset has no split '{split}' (it has: {', '.join(data.splits) or 'none'})")
    if not capped and config.eval_batches is not None:
        config = dataclasses.replace(config, eval_batches=None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(device_of(model), config.precision):
            metrics = task.evaluate(model, data, split, config, **(options or {}))
    finally:
        model.train(was_training)
    if capped or not isinstance(data.splits[split], list) or "examples" in metrics:
        return metrics  # a stream's task says how many tokens it scored (the language model does)
    return {**metrics, "examples": len(data.splits[split])}
