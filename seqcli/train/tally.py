"""A run's tally: what the training loop keeps from step to step besides the weights, in one
typed record that a checkpoint stores (as its `window` and `best` entries)."""

from __future__ import annotations

from dataclasses import dataclass

from seqcli.metrics import better


@dataclass
class Best:
    """The best validation result so far, and the evaluations since it (for early stopping)."""

    metric: str
    value: float
    step: int
    stale: int = 0

    def to_state(self) -> dict:
        return {"metric": self.metric, "value": self.value, "step": self.step, "stale": self.stale}


@dataclass
class Tally:
    """The training loss summed since the last log record (and its steps), and the best
    validation result. The one place that decides whether an evaluation is a new best."""

    loss_sum: float = 0.0
    loss_steps: int = 0
    best: Best | None = None

    def add(self, loss: float) -> None:
        self.loss_sum += loss
        self.loss_steps += 1

    def mean(self) -> float:
        """The mean training loss since the last call; the window starts again."""
        mean = self.loss_sum / max(self.loss_steps, 1)
        self.loss_sum, self.loss_steps = 0.0, 0
        return mean

    def observe(self, metric: str, value: float, step: int, direction: str) -> bool:
        """Record an evaluation of `metric` (HIGHER or LOWER is better: `direction`); True
        when it is a new best (a NaN never is)."""
        improved = better(value, self.best.value if self.best is not None else None, direction)
        if improved:
            self.best = Best(metric, value, step)
        elif self.best is not None:
            self.best.stale += 1
        return improved

    def stopped(self, patience: int | None) -> bool:
        """No better result in `patience` evaluations."""
        return bool(patience and self.best is not None and self.best.stale >= patience)

    def to_state(self) -> tuple[list, dict | None]:
        return [self.loss_sum, self.loss_steps], self.best.to_state() if self.best is not None else None

    @classmethod
    def from_state(cls, window, best: dict | None) -> Tally:
        """From a checkpoint's `window` and `best` (checked by the checkpoint before)."""
        return cls(float(window[0]), int(window[1]), Best(best["metric"], float(best["value"]), int(best["step"]),
                                                          int(best.get("stale", 0))) if best else None)
