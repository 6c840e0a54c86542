"""The training loop: steps, evaluation, checkpoints, exact resume, signals, the metric log."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import signal
import threading
import time
from pathlib import Path

import torch

from seqcli.api import Data, Task, TrainConfig
from seqcli.errors import CheckpointError, SeqcliError, TrainingError
from seqcli.runfolder import RunFolder
from seqcli.train.tally import Tally
from seqcli.train import checkpoint, distributed, loop
from seqcli.train.checkpoint import Checkpoint
from seqcli import optim
from seqcli.train.progress import Reporter
from seqcli.train.device import pick_device
from seqcli.train.stepper import Stepper, check_optimizer_values, evaluate, fit_optimizer_state


class Interrupted(SeqcliError):
    """Ctrl-C or SIGTERM: a checkpoint was saved at the step boundary. A clean stop, not a
    failure: the command line says 'stopped:' and exits 128 + the signal's number."""

    label = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


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
        self.per_epoch = loop.count_batches(task, data, config)
        self.total = loop.total_steps(config, self.per_epoch)
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
            shard = (lambda batch: self.task.shard(batch, self.dist.rank, self.dist.world)) if self.dist.active else None
            walk = loop.steps(self.task, self.data, cfg, self.epoch, self.position, shard) if not self.finished() else ()
            for step in walk:
                if step.epoch != self.epoch:  # an epoch left with nothing to train on (a resumed end of one)
                    self.epoch, self.position, self.carry = step.epoch, 0, None
                if self.finished():
                    break
                if cfg.accumulate == 1:
                    self._train_on(step.batches[0])
                else:
                    self._train_on_many(step.batches)
                self.position = step.position
                if step.last:  # the epoch is complete: what is saved from here on resumes in the next one
                    self.epoch, self.position, self.carry = self.epoch + 1, 0, None
                if self.step % cfg.log_every == 0:
                    self._log_training()
                if self.step % cfg.eval_every == 0 or self.finished():
                    last_metrics = self._evaluate_and_save()
                elif cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self._save(self._checkpoint(None), best=False)
                if (self.agreed_stop if self.dist.active else self.stop_signal) is not None:
                    self._stop()
                if self.finished():
                    break
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


class _TrainStep(torch.nn.Module):
    """The task's training step as a module, so DistributedDataParallel can wrap any task:
    its forward runs `task.train_step(model, ...)`, whatever parts of the model that calls."""

    def __init__(self, task: Task, model: torch.nn.Module):
        super().__init__()
        self.task = task
        self.model = model

    def forward(self, batch, carry):
        return self.task.train_step(self.model, batch, carry)


def _moved(carry, device):
    """A carried state (tensors in tuples or lists) on `device`."""
    if isinstance(carry, torch.Tensor):
        return carry.to(device)
    if isinstance(carry, (tuple, list)):
        return type(carry)(_moved(c, device) for c in carry)
    return carry


def _as_state(value):
    """random.getstate() comes back from a checkpoint with lists where it had tuples."""
    version, internal, gauss = value
    return version, tuple(internal), gauss


