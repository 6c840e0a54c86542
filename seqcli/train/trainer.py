"""The training loop: steps, evaluation, checkpoints and the metric log of one run."""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path

import torch

from seqcli import __version__
from seqcli.api import Data, Task, TrainConfig
from seqcli.errors import SeqcliError, TrainingError
from seqcli.train import checkpoint
from seqcli.train.optim import build_optimizer, build_scheduler
from seqcli.train.progress import Reporter


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    """Runs `task` on `data` with `model` for `config.max_steps` steps, writing into `run_dir`:
    metrics.jsonl and checkpoints/{last,best}.pt (each a self-contained checkpoint)."""

    def __init__(self, task: Task, model: torch.nn.Module, data: Data, config: TrainConfig, run_dir: Path,
                 meta: dict, reporter: Reporter):
        self.task, self.data, self.config = task, data, config
        self.run_dir = Path(run_dir)
        self.meta = meta  # recipe, plugins, fields, data info: stored in every checkpoint
        self.reporter = reporter
        self.device = pick_device(config.device)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model.parameters(), config.optimizer)
        self.scheduler = build_scheduler(self.optimizer, config.scheduler, config.max_steps)
        self.plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.step = 0
        self.epoch = 0
        self.best: dict | None = None
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.log = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")

    def fit(self) -> dict:
        """Train to `max_steps`; returns the last evaluation's metrics."""
        cfg = self.config
        self.reporter.start(cfg.max_steps, self.step)
        last_metrics: dict = {}
        window_loss, window_steps, started = 0.0, 0, time.perf_counter()
        try:
            while self.step < cfg.max_steps:
                carry = None
                for batch in self.task.batches(self.data, cfg, self.epoch):
                    self.model.train()
                    result = self.task.train_step(self.model, batch, carry)
                    loss = result.loss.item()
                    if not math.isfinite(loss):
                        raise TrainingError(f"step {self.step + 1}: the loss is {loss}; lower train.optimizer.lr or "
                                            f"set train.clip_grad_norm (the last good checkpoint is kept)")
                    self.optimizer.zero_grad(set_to_none=True)
                    result.loss.backward()
                    if cfg.clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm)
                    self.optimizer.step()
                    if self.scheduler is not None and not self.plateau:
                        self.scheduler.step()
                    carry = result.carry
                    self.step += 1
                    window_loss += loss
                    window_steps += 1
                    lr = self.optimizer.param_groups[0]["lr"]
                    self.reporter.step(self.step, loss, result.targets, lr)
                    if self.step % cfg.log_every == 0:
                        self._write({"step": self.step, "split": "train", "loss": window_loss / window_steps,
                                     "lr": lr, "tokens_per_s": round(self.reporter.tokens_per_s, 1),
                                     "elapsed_s": round(time.perf_counter() - started, 3)})
                        window_loss, window_steps = 0.0, 0
                    if self.step % cfg.eval_every == 0 or self.step == cfg.max_steps:
                        last_metrics = self._evaluate_and_save()
                    if self.step >= cfg.max_steps:
                        break
                else:
                    self.epoch += 1
        finally:
            self.reporter.close()
            self.log.close()
        return last_metrics

    def _evaluate_and_save(self) -> dict:
        metrics = evaluate(self.task, self.model, self.data, "valid", self.config)
        name = self.task.main_metric
        value = metrics[name]
        improved = self.best is None or (value > self.best["value"] if self.task.higher_is_better
                                         else value < self.best["value"])
        if improved:
            self.best = {"metric": name, "value": value, "step": self.step}
        if self.plateau:
            self.scheduler.step(metrics["loss"])
        self._write({"step": self.step, "split": "valid", **metrics})
        self.reporter.evaluation(self.step, "valid", metrics, improved)
        state = self._checkpoint(metrics)
        checkpoint.save(state, self.run_dir / "checkpoints" / "last.pt")
        if improved:
            checkpoint.save(state, self.run_dir / "checkpoints" / "best.pt")
        return metrics

    def _checkpoint(self, metrics: dict) -> dict:
        return {
            **self.meta,
            "seqcli_version": __version__,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": metrics,
            "best": self.best,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
        }

    def _write(self, record: dict) -> None:
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()


def evaluate(task: Task, model: torch.nn.Module, data: Data, split: str, config: TrainConfig) -> dict:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return task.evaluate(model, data, split, config)
    finally:
        model.train(was_training)
