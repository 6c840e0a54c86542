"""The training loop: steps, evaluation, checkpoints, exact resume, signals, the metric log."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import re
import signal
import threading
import time
from pathlib import Path

import torch

from seqcli.api import Data, StepResult, Task, TrainConfig, device_of
from seqcli.errors import CheckpointError, SeqcliError, TrainingError
from seqcli.runfolder import RunFolder
from seqcli.train.tally import Tally
from seqcli.train import checkpoint, distributed
from seqcli.train.checkpoint import Checkpoint
from seqcli import optim
from seqcli.train.progress import Reporter


class Interrupted(SeqcliError):
    """Ctrl-C or SIGTERM: a checkpoint was saved at the step boundary. A clean stop, not a
    failure: the command line says 'stopped:' and exits 128 + the signal's number."""

    label = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


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


class Trainer:
    """Runs `task` on `data` with `model` for `config.max_steps` steps (the run's total),
    writing into `run_dir`: metrics.jsonl and checkpoints/ (last.pt, best.pt, and step-N.pt
    for the last `keep_checkpoints`). Given a checkpoint in `resume`, it continues exactly
    where that checkpoint left off: same batches, same random numbers, same carried state."""

    def __init__(self, task: Task, model: torch.nn.Module, data: Data, config: TrainConfig, run_dir: Path,
                 record: Checkpoint, reporter: Reporter, resume: Checkpoint | None = None, on_evaluation=None,
                 sinks: list | None = None):
        self.task, self.data, self.config = task, data, config
        self.given_sinks = list(sinks or [])  # where records go besides metrics.jsonl (MLflow); TensorBoard is made here
        self.on_evaluation = on_evaluation  # called (step, metrics) after each evaluation is saved
        self.run_dir = Path(run_dir)
        self.run = RunFolder(run_dir)
        self.record = record  # recipe, plugins, fields, data info: the same in every checkpoint
        self.reporter = reporter
        self.device = pick_device(config.device)
        self.model = model.to(self.device)
        self.dist = distributed.context()
        self.replicas = None  # DistributedDataParallel over the task's training step
        if self.dist.active:
            if config.batch_size < self.dist.world:
                raise TrainingError(f"train.batch_size {config.batch_size} is smaller than the {self.dist.world} "
                                    f"processes; each needs part of every batch")
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.replicas = DistributedDataParallel(_TrainStep(task, self.model), device_ids=ids)
        self.per_epoch = count_batches(task, data, config)
        self.total = total_steps(config, self.per_epoch)
        self.stepper = Stepper(task, self.model, config, self.device, self.replicas, total=self.total)
        self.optimizer, self.scheduler = self.stepper.optimizer, self.stepper.scheduler
        self.plateau = self.stepper.plateau
        self.step = 0
        self.epoch = 0  # epochs completed
        self.position = 0  # batches of the current epoch already trained on
        self.seen = 0  # targets trained on by this process (for the rate in the log)
        self.paused = 0.0  # seconds spent evaluating and saving since the last log record
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.carry = None  # what the task hands from one batch to the next
        self.tally = Tally()  # the training loss since the last log record, the best validation result
        self.stop_signal: int | None = None  # set by the signal handler
        self.agreed_stop: int | None = None  # distributed: a signal some rank got, seen by all at one step
        self.skipped = 0
        self.restored_carry = False
        if self.dist.main:
            self.run.checkpoints.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self._restore(resume)

    # -- the loop -------------------------------------------------------------------------

    def fit(self) -> dict:
        """Train to the run's budget (train.max_steps, train.max_epochs, or an early stop on
        train.patience); returns the last evaluation's metrics."""
        cfg = self.config
        self.reporter.start(self.total, self.step, unit=self.task.unit)
        if cfg.accumulate > 1:
            self.reporter.message(f"train.accumulate {cfg.accumulate}: a step is one optimizer update over "
                                  f"{cfg.accumulate} batches of {cfg.batch_size}; steps count updates")
        last_metrics: dict = {}
        self.started = time.perf_counter()
        self.mark = (self.started, self.seen)  # the clock and the targets at the last log record
        self.log = self.run.log().open() if self.dist.main else None
        board = []
        if cfg.tensorboard and self.dist.main:
            from seqcli.tracking import TensorBoard

            board = [TensorBoard(self.run_dir, self.step)]
        self.sinks = board + self.given_sinks
        previous = self._catch_signals()
        try:
            while not self.finished():
                group = []  # the batches of one optimizer step (train.accumulate)
                for index, batch, last in _marking_last(self.task.batches(self.data, cfg, self.epoch)):
                    if index < self.position:  # resuming mid-epoch: these were trained on already
                        continue
                    if self.dist.active:
                        batch = self.task.shard(batch, self.dist.rank, self.dist.world)
                    group.append(batch)
                    if len(group) < cfg.accumulate and not last:  # an epoch's last step may take fewer
                        continue
                    if cfg.accumulate == 1:
                        self._train_on(batch)
                    else:
                        self._train_on_many(group)
                    group = []
                    self.position = index + 1
                    if last:  # the epoch is complete: what is saved from here on resumes in the next one
                        self.epoch, self.position, self.carry = self.epoch + 1, 0, None
                    if self.step % cfg.log_every == 0:
                        self._log_training()
                    if self.step % cfg.eval_every == 0 or self.finished():
                        last_metrics = self._evaluate_and_save()
                    elif cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        self._save(self._checkpoint(None), best=False)
                    if (self.agreed_stop if self.dist.active else self.stop_signal) is not None:
                        self._stop()
                    if self.finished() or last:
                        break
                else:  # every batch skipped: a checkpoint from the end of an epoch, or an empty epoch
                    if self.position == 0:
                        raise TrainingError(f"epoch {self.epoch + 1}: the task gave no training batches")
                    self.epoch, self.position, self.carry = self.epoch + 1, 0, None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.reporter.close()
            if self.log is not None:
                self.log.close()
            for sink in board:
                sink.close()
        self.stepper.finish()  # NT-ASGD, train.ema: the model keeps the averaged weights
        if self.stopped_early():
            best = self.tally.best
            self.reporter.message(f"early stop at step {self.step}: no better valid {best.metric} in {best.stale} "
                                  f"evaluations (best {best.value:.4f} at step {best.step}; train.patience is "
                                  f"{cfg.patience})")
        return last_metrics

    def finished(self) -> bool:
        cfg = self.config
        return ((cfg.max_steps is not None and self.step >= cfg.max_steps)
                or (cfg.max_epochs is not None and self.epoch >= cfg.max_epochs) or self.stopped_early())

    def stopped_early(self) -> bool:
        return self.tally.stopped(self.config.patience)

    def _log_training(self) -> None:
        """One training record: the same numbers go to metrics.jsonl, TensorBoard and the
        plain console line."""
        now = time.perf_counter()
        then, seen_then = self.mark
        record = {"step": self.step, "split": "train", "epoch": self.epoch + self.position / max(self.per_epoch, 1),
                  "loss": self.tally.mean(), "lr": self.lr,
                  f"{self.task.unit}_per_s": round((self.seen - seen_then) / max(now - then - self.paused, 1e-9), 1),
                  "elapsed_s": round(now - self.started, 3)}
        record["epoch"] = round(record["epoch"], 3)
        if self.config.accumulate > 1:
            record["batches_per_step"] = self.config.accumulate
        self._write(record)
        self.reporter.logged(record)
        self.mark, self.paused = (now, self.seen), 0.0

    def params_in_order(self) -> list:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _train_on(self, batch) -> None:
        result = self._forward(batch, self.carry)
        if self.replicas is None:
            loss, targets = result.loss.item(), result.targets
        else:
            loss, targets = self._agree(result)
        self.stepper.step, self.stepper.epoch = self.step, self.epoch  # where the schedule is
        self.step += 1
        norm = self.stepper.update(result) if math.isfinite(loss) else math.nan
        self._after_step(loss, targets, norm, result.carry)

    def _after_step(self, loss: float, targets: int, norm: float, carry) -> None:
        """The bookkeeping of one optimizer step: a non-finite one stops the run or is
        skipped (train.nonfinite); a good one moves the carried state, the tally and the
        progress on."""
        cfg = self.config
        self.lr = self.optimizer.param_groups[0]["lr"]
        if not math.isfinite(norm):
            what = f"the loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {norm} (the loss was {loss:.4g})"
            if cfg.nonfinite == "stop":
                raise TrainingError(f"step {self.step}: {what}; lower train.optimizer.lr, set "
                                    f"train.clip_grad_norm, or set train.nonfinite=skip (the last good checkpoint is kept)")
            self.skipped += 1
            self.reporter.message(f"step {self.step}: {what}; batch skipped, weights unchanged ({self.skipped} so far)")
            self.carry = None  # a state that produced NaN is not carried on
            return
        self.carry = carry
        self.tally.add(loss)
        self.seen += targets
        self.reporter.step(self.step, loss, targets, self.lr)

    def _train_on_many(self, group: list) -> None:
        """One optimizer step over several batches (train.accumulate): each batch's loss is
        weighted by what it averages over (its targets; its sequences for
        loss_reduction=sequence_sum) and back-propagated as it is computed, so memory holds
        one batch's activations; the summed gradient is then divided by the total weight over
        every batch (and every process), which makes the update that of one step on all of
        them together. Distributed, gradients are exchanged once, with the last batch."""
        stepper = self.stepper
        stepper.step, stepper.epoch = self.step, self.epoch  # where the schedule is
        stepper.begin()
        carry, weighted, total, count, loss = self.carry, 0.0, 0, 0.0, 0.0
        for k, batch in enumerate(group):
            exchange = self.replicas is None or k == len(group) - 1
            with contextlib.nullcontext() if exchange else self.replicas.no_sync():
                result = self._forward(batch, carry)
                part, targets = (result.loss.item(), result.targets) if self.replicas is None else self._agree(result)
                if not math.isfinite(part):  # every process sees the same agreed loss, and stops here
                    loss = part
                    break
                count += stepper.backward(result, weighted=True)
            carry = result.carry
            weighted, total = weighted + part * targets, total + targets
        else:
            loss = weighted / max(total, 1)
        self.step += 1
        norm = math.nan
        if math.isfinite(loss):  # distributed, each process's gradient is the mean over processes: undo that
            share = distributed.all_sum([count])[0] / self.dist.world if self.replicas is not None else count
            norm = stepper.take(divide=share)
        self._after_step(loss, total, norm, carry)

    def _forward(self, batch, carry):
        if not self.restored_carry:
            return self.stepper.forward(batch, carry)
        self.restored_carry = False  # a carried state from a checkpoint is checked where it is used
        try:
            return self.stepper.forward(batch, carry)
        except (RuntimeError, ValueError, IndexError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"damaged checkpoint: its carry (the state handed from batch to batch) does "
                                  f"not fit the model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                                  ) from None

    def _agree(self, result) -> tuple[float, int]:
        """Distributed: the mean loss over all ranks' targets, their total, and a stop signal
        any rank received, so that every rank takes the same decisions at the same step."""
        signum = float(self.stop_signal or 0)
        total, targets, stopping, signums = distributed.all_sum(
            [result.loss.item() * result.targets, float(result.targets), float(signum > 0), signum])
        if stopping:
            self.agreed_stop = round(signums / stopping)
        return total / max(targets, 1), int(targets)

    def _evaluate_and_save(self) -> dict:
        began = time.perf_counter()
        with self.stepper.averaged():
            metrics = evaluate(self.task, self.model, self.data, "valid", self.config, capped=True)
        started = self.stepper.averaging.observe(metrics["loss"]) if self.stepper.averaging is not None else None
        if started:
            self.reporter.message(f"step {self.step}: {started}")
        name = self.task.main_metric
        improved = self.tally.observe(name, metrics[name], self.step, self.task.direction(name))
        if self.plateau:
            self.scheduler.step(metrics["loss"])
        self._write({"step": self.step, "split": "valid", **metrics})
        self.reporter.evaluation(self.step, "valid", metrics, improved)
        self._save(self._checkpoint(metrics), best=improved)
        self.paused += time.perf_counter() - began
        if self.on_evaluation is not None:  # a sweep reports to its study, and may stop the run here
            self.on_evaluation(self.step, metrics)
        return metrics

    # -- checkpoints ------------------------------------------------------------------------

    def _checkpoint(self, metrics: dict | None) -> Checkpoint:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        ranks = None
        if self.dist.active:  # each rank's own carried state and random numbers, for resuming
            ranks = distributed.gather({"carry": _moved(self.carry, "cpu"), "rng": rng})
        weights = self.model.state_dict()
        if self.stepper.saves_average:  # NT-ASGD, train.ema: the model saved is the average
            with self.stepper.averaged():  # (the training weights are in the optimizer's state)
                weights = {k: v.clone() for k, v in self.model.state_dict().items()}
        return dataclasses.replace(
            self.record, model=weights, optimizer=self.stepper.state_dict(), average=self.stepper.average_state(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None, step=self.step,
            epoch=self.epoch, position=self.position, carry=self.carry, tally=copy.deepcopy(self.tally),
            metrics=metrics, rng=rng, ranks=ranks)

    def _save(self, state: Checkpoint, best: bool) -> None:
        """best.pt when the model improved, step-N.pt for the last N, then last.pt. last.pt is
        what a run resumes from, so it is written last: a kill before it leaves the previous
        one, and the resumed run writes the others again, the same."""
        if not self.dist.main:
            return
        payload = checkpoint.seal(state.to_state())
        if best:
            checkpoint.save(payload, self.run.checkpoint("best"))
        keep = self.config.keep_checkpoints
        if keep > 1:
            checkpoint.save(payload, self.run.checkpoint(self.step))
            self.run.keep_numbered(keep)
        checkpoint.save(payload, self.run.checkpoint("last"))

    def _restore(self, ckpt: Checkpoint) -> None:
        if ckpt.optimizer is None or ckpt.rng is None:
            raise CheckpointError(f"{ckpt.path}: holds no training state (optimizer and random numbers); "
                                  f"it can be sampled and evaluated, not resumed")
        checkpoint.load_weights(self.model, ckpt)
        configured = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        recorded = ckpt.recipe.train.optimizer or {}
        rebuilt = bool(recorded) and recorded.get("name") != (self.config.optimizer or {}).get("name")
        try:
            if rebuilt:  # another optimizer: its state starts afresh, the weights carry on
                self.stepper.load_state_dict(ckpt.optimizer, ckpt.average, optimizer=False)
                self.reporter.message(f"train.optimizer: {recorded.get('name')} -> {self.config.optimizer.get('name')}:"
                                      f" the new optimizer starts with a fresh state from the checkpoint's weights")
            else:
                fit_optimizer_state(ckpt, self.params_in_order())
                self.stepper.load_state_dict(ckpt.optimizer, ckpt.average)
                check_optimizer_values(ckpt, configured)
            if self.scheduler is not None and ckpt.scheduler is not None and not rebuilt:
                self.scheduler.load_state_dict(ckpt.scheduler)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
            raise CheckpointError(f"{ckpt.path}: the optimizer state does not fit this optimizer ({exc})") from None
        if not rebuilt:
            self._apply_changed_hyperparameters(recorded, configured)
        if ckpt.position >= max(self.per_epoch, 1):
            raise CheckpointError(f"{ckpt.path}: damaged checkpoint: position {ckpt.position} is past the end of an "
                                  f"epoch ({self.per_epoch} batches)")
        self.restored_carry = ckpt.carry is not None or bool(ckpt.ranks)
        self.step, self.epoch, self.position = ckpt.step, ckpt.epoch, ckpt.position
        self.tally = copy.deepcopy(ckpt.tally)
        ranks = ckpt.ranks or [{"carry": ckpt.carry, "rng": ckpt.rng}]
        mine = ranks[self.dist.rank] if len(ranks) == self.dist.world else {"carry": None, "rng": ranks[0]["rng"]}
        if len(ranks) != self.dist.world:
            self.reporter.message(f"the checkpoint was written by {len(ranks)} process(es), this run has "
                                  f"{self.dist.world}: the carried state starts afresh")
        rng, carry = mine["rng"], mine["carry"]
        self.carry = _moved(carry, self.device)
        torch.set_rng_state(rng["torch"])
        random.setstate(_as_state(rng["python"]))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        if self.dist.main:
            self.run.log().truncate(self.step)

    def _apply_changed_hyperparameters(self, recorded: dict, configured: list[dict]) -> None:
        """The optimizer settings the recipe changed since the checkpoint (`resume --force`)
        replace the restored ones: a new learning rate scales the restored one (the schedule's
        or the plateau's progress is kept), any other setting is the recipe's."""
        if not recorded:
            return
        before = optim.hyperparameters(recorded)
        after = optim.hyperparameters(self.config.optimizer or {})
        for key in sorted(set(before) | set(after)):
            old, new = before.get(key), after.get(key)
            if old == new:
                continue
            for group, wanted in zip(self.optimizer.param_groups, configured):
                if key == "lr" and isinstance(old, (int, float)) and old > 0:
                    group["lr"] = group["lr"] * (new / old)
                elif key in wanted:
                    group[key] = wanted[key]
            if key == "lr" and isinstance(self.scheduler, optim.Schedule):
                self.scheduler.base = [g["lr"] for g in configured]
            self.reporter.message(f"train.optimizer.{key}: {old!r} -> {new!r}, applied from this step")

    # -- signals ------------------------------------------------------------------------------

    def _catch_signals(self) -> dict:
        """First Ctrl-C or SIGTERM: finish the step, save, stop. A second one: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self.stop_signal is not None:
                if self.dist.active:  # the launcher passes the terminal's signal on: the same stop
                    return
                raise KeyboardInterrupt
            self.stop_signal = signum
            self.reporter.message("stopping after this step and saving a checkpoint (press Ctrl-C again to stop at once)")

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
        return previous

    def _stop(self) -> None:
        self._save(self._checkpoint(None), best=False)
        signum = self.agreed_stop or self.stop_signal
        name = signal.Signals(signum).name
        raise Interrupted(f"{name} at step {self.step}; saved {self.run.checkpoint('last')}; "
                          f"continue with: seqcli resume {self.run_dir}", signum)

    def _write(self, record: dict) -> None:
        if self.log is not None:
            self.log.append(record)
        for sink in self.sinks:
            sink.write(record)


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


class _TrainStep(torch.nn.Module):
    """The task's training step as a module, so DistributedDataParallel can wrap any task:
    its forward runs `task.train_step(model, ...)`, whatever parts of the model that calls."""

    def __init__(self, task: Task, model: torch.nn.Module):
        super().__init__()
        self.task = task
        self.model = model

    def forward(self, batch, carry):
        return self.task.train_step(self.model, batch, carry)


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


def count_batches(task: Task, data: Data, config: TrainConfig) -> int:
    """Training batches in one epoch (the first; every built-in task's epochs are equal)."""
    return sum(1 for _ in task.batches(data, config, 0))


def total_steps(config: TrainConfig, per_epoch: int) -> int:
    """The run's last step: train.max_steps, or max_epochs full epochs, whichever comes first
    (an epoch is ceil(batches / train.accumulate) steps)."""
    steps = -(-per_epoch // config.accumulate)
    budgets = [b for b in (config.max_steps, config.max_epochs and config.max_epochs * steps) if b]
    return min(budgets)


def _marking_last(batches):
    """(index, batch, is_last) for each batch: the end of an epoch is known as it is trained."""
    iterator = iter(batches)
    try:
        current = next(iterator)
    except StopIteration:
        return
    index = 0
    for following in iterator:
        yield index, current, False
        current, index = following, index + 1
    yield index, current, True


def _moved(carry, device):
    """A carried state (tensors in tuples or lists) on `device`."""
    if isinstance(carry, torch.Tensor):
        return carry.to(device)
    if isinstance(carry, (tuple, list)):
        return type(carry)(_moved(c, device) for c in carry)
    return carry


def autocast(device: torch.device, precision: str):
    """bf16: run the forward pass under autocast (matrix products in bfloat16, reductions and
    losses in float32; the weights and the optimizer stay float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _as_state(value):
    """random.getstate() comes back from a checkpoint with lists where it had tuples."""
    version, internal, gauss = value
    return version, tuple(internal), gauss


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
