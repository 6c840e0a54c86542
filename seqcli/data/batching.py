"""What the example-based tasks share, for built-in and plugin tasks alike (all of it is
exported by `seqcli.layers`): shuffled batches, padding, a base class with the training and
evaluation loop, and a user's inputs encoded the way the training data was."""

from __future__ import annotations

from typing import Any

import torch

from seqcli.api import Data, DataError, StepResult, Task, TrainConfig, device_of
from seqcli.data.readers import numbers
from seqcli.nn.functional import IGNORE, mask, pad  # noqa: F401 - tasks take them from here too
from seqcli.vocab import Numeric


def order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """A permutation of range(n) fixed by (seed, epoch)."""
    if not shuffle:
        return list(range(n))
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def batches(examples: list, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True):
    """Lists of `batch_size` examples (the last may be shorter), in an order fixed by (seed,
    epoch), or in order with `shuffle=False`."""
    idx = order(len(examples), seed, epoch, shuffle)
    for i in range(0, len(idx), batch_size):
        yield [examples[j] for j in idx[i : i + batch_size]]


def require(fields: dict, task: str, **kinds) -> None:
    """Fail clearly when a dataset lacks the fields a task reads (e.g. input=..., label=...)."""
    for name, cls in kinds.items():
        if name not in fields or not isinstance(fields[name], cls):
            what = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
            raise DataError(f"task {task} needs a dataset with a '{name}' field ({what}); this dataset has: "
                            f"{', '.join(fields) or 'none'}")


def stack_inputs(seqs: list[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length inputs -> padded (T, B[, D]) on `device`, lengths (B,) on `device`."""
    x, lengths = pad(seqs)
    return x.to(device), lengths.to(device)


class ExampleTask(Task):
    """A task over separate examples. Subclasses write `collate` (or `batch`, where the batch
    depends on the model), `loss` and `metrics`."""

    label_smoothing: float = 0.0  # a task that offers it takes it as a constructor argument

    def smoothing(self, model) -> float:
        """The label smoothing a loss uses now: the task's while training, none while
        evaluating (validation losses and perplexities are the plain cross-entropy)."""
        return self.label_smoothing if model.training else 0.0

    def batches(self, data: Data, config: TrainConfig, epoch: int):
        return batches(data.splits["train"], config.batch_size, config.seed, epoch)

    def collate(self, examples: list[dict], device) -> dict:
        raise NotImplementedError

    def batch(self, model, examples: list[dict]) -> dict:
        """API 1.4: the examples as `model` reads them: `collate` on the model's device. A task
        whose batches depend on what the model is (its vocabularies, whether it copies)
        overrides this and reads those facts from the model."""
        return self.collate(examples, device_of(model))

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, int, Any]:
        """(mean loss, number of targets, model outputs for metrics)."""
        raise NotImplementedError

    def train_step(self, model, examples, carry) -> StepResult:
        loss, count, _ = self.loss(model, self.batch(model, examples))
        return StepResult(loss, count, sequences=len(examples))

    def evaluate(self, model, data: Data, split: str, config: TrainConfig) -> dict[str, float]:
        examples = data.splits[split]
        if config.eval_batches is not None:
            examples = examples[: config.eval_batches * config.batch_size]
        total, count, parts = 0.0, 0, []
        for chunk in batches(examples, config.batch_size, shuffle=False):
            batch = self.batch(model, chunk)
            loss, n, outputs = self.loss(model, batch)
            total += loss.item() * n
            count += n
            parts.append((batch, outputs))
        return {"loss": total / max(count, 1), **self.metrics(model, parts, data.fields)}

    def metrics(self, model, parts: list[tuple[dict, Any]], fields: dict) -> dict[str, float]:
        return {}


def encode_input(text: str, field, where: str, unknown_ok: bool = False) -> torch.Tensor:
    """A user's input line: text split like the training data, or 'a b; c d' numbers. A token
    the vocabulary lacks is refused by name, or, with `unknown_ok` (a model that copies its
    input's words), read as <unk>."""
    if isinstance(field, Numeric):
        values = torch.tensor(numbers(text, where), dtype=torch.float32)
        if values.shape[1] != field.dim:
            raise DataError(f"{where}: {values.shape[1]} values per step; the model reads {field.dim}")
        return values
    tokens = field.split(text)
    if not tokens:
        raise DataError(f"{where}: the input is empty")
    unknown = field.unknown(text)
    if unknown and not unknown_ok:
        shown = ", ".join(repr(t) for t in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise DataError(f"{where} has tokens the model never saw in training: {shown}")
    return torch.tensor([field.index.get(t, 0) for t in tokens])


def user_batch(inputs: list[str], field, device, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The lines given to `seqcli sample --input/--input-file`, encoded and padded."""
    x = [encode_input(text, field, f"input {i + 1}") for i, text in enumerate(inputs)]
    if not x:
        raise DataError(f"give {what} (--input TEXT or --input-file FILE, one per line)")
    return stack_inputs(x, device)
