"""Progress reporting. The trainer emits events; a reporter shows them.

On a terminal: a rich progress bar with loss, throughput and ETA, evaluations printed above
it. Anywhere else (CI logs, pipes, files): plain lines every `log_every` steps, showing the
record written to metrics.jsonl at that step (the same numbers).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def format_metrics(metrics: dict) -> str:
    """The numbers (notes such as sacrebleu's signature are for `seqcli evaluate`)."""
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                     if not isinstance(v, str))


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Reporter:
    """Receives the trainer's events; keeps a smoothed rate (the task's unit per second) for
    the live bar."""

    def __init__(self, console: Console, log_every: int = 50):
        self.console = console
        self.log_every = log_every
        self.tokens_per_s = 0.0
        self._last = None
        self.total = 0
        self.first_step = 0
        self.unit = "tokens"

    def start(self, total_steps: int, first_step: int = 0, unit: str = "tokens", **info) -> None:
        self.total, self.first_step, self.unit = total_steps, first_step, unit
        self.started = time.perf_counter()

    def logged(self, record: dict) -> None:
        """A training record, as metrics.jsonl has it."""

    def step(self, step: int, loss: float, targets: int, lr: float) -> None:
        now = time.perf_counter()
        if self._last is not None:
            rate = targets / max(now - self._last, 1e-9)
            self.tokens_per_s = rate if not self.tokens_per_s else 0.9 * self.tokens_per_s + 0.1 * rate
        self._last = now

    def eta(self, step: int) -> float:
        done = step - self.first_step
        return (time.perf_counter() - self.started) / max(done, 1) * (self.total - step)

    def evaluation(self, step: int, split: str, metrics: dict, best: bool) -> None:
        self.console.print(f"eval  step {step}: {split} {format_metrics(metrics)}{'  (best)' if best else ''}")
        self._last = None  # evaluation time is not training throughput

    def message(self, text: str) -> None:
        self.console.print(text)

    def close(self) -> None:
        pass


class PlainReporter(Reporter):
    def logged(self, record: dict) -> None:
        step = record["step"]
        rate = record[f"{self.unit}_per_s"]
        self.console.print(
            f"step {step}/{self.total}  loss {record['loss']:.4f}  lr {record['lr']:.3g}  "
            f"{rate:,.0f} {self.unit}/s  epoch {record['epoch']:.2f}  eta {format_duration(self.eta(step))}",
            highlight=False,
        )


class RichReporter(Reporter):
    """A live bar; lines printed to the same console while it runs appear above it."""

    def start(self, total_steps: int, first_step: int = 0, unit: str = "tokens", **info) -> None:
        super().start(total_steps, first_step, unit)
        self.progress = Progress(
            TextColumn("[bold blue]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[tps]:,.0f} " + unit + "/s"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task_id = self.progress.add_task("train", total=total_steps, completed=first_step, loss=float("nan"), tps=0.0)
        self.progress.start()

    def step(self, step: int, loss: float, targets: int, lr: float) -> None:
        super().step(step, loss, targets, lr)
        self.progress.update(self.task_id, completed=step, loss=loss, tps=self.tokens_per_s)

    def close(self) -> None:
        self.progress.stop()


def reporter_for(console: Console, log_every: int) -> Reporter:
    return (RichReporter if console.is_terminal else PlainReporter)(console, log_every)
