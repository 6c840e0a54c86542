"""The one training loop's walk through the data, for every loop that trains (the trainer,
`seqcli gradflow`, the contract kits): epochs of the task's batches, grouped into optimizer
steps (train.accumulate), resumable at any position."""

from __future__ import annotations

from dataclasses import dataclass

from seqcli.api import Data, Task, TrainConfig
from seqcli.errors import TrainingError


@dataclass
class Step:
    """One optimizer step's batches, the epoch they belong to (epochs completed before it),
    where the walk stands after them (`position`: the batches of the epoch trained on), and
    whether they end the epoch."""

    batches: list
    epoch: int
    position: int
    last: bool


def steps(task: Task, data: Data, config: TrainConfig, epoch: int = 0, position: int = 0, shard=None):
    """The optimizer steps of training from `epoch`, after its first `position` batches (a
    resumed run), endlessly: each the next `train.accumulate` batches (an epoch's last step
    may take fewer); `shard(batch)`: this process's part of each batch (distributed). An epoch
    that gives no batch to train on is a TrainingError."""
    while True:
        group, stepped = [], False
        for index, batch, last in _marking_last(task.batches(data, config, epoch)):
            if index < position:  # resuming mid-epoch: these were trained on already
                continue
            group.append(batch if shard is None else shard(batch))
            if len(group) < config.accumulate and not last:
                continue
            yield Step(group, epoch, index + 1, last)
            group, stepped = [], True
        if not stepped and position == 0:
            raise TrainingError(f"epoch {epoch + 1}: the task gave no training batches")
        epoch, position = epoch + 1, 0


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
