"""The plugin contracts: the one module a plugin author reads.

seqcli has three kinds of plugins, each registered under an entry-point group in the
plugin package's `pyproject.toml`:

    [project.entry-points."seqcli.cells"]     mycell = "my_package.cell:MyCell"
    [project.entry-points."seqcli.tasks"]     mytask = "my_package.task:MyTask"
    [project.entry-points."seqcli.datasets"]  mydata = "my_package.data:MyData"

A recipe names a plugin by its registered name (`cell: {name: mycell, size: 3}`); the other
keys are its constructor's keyword arguments, checked against the signature and type hints
before anything heavy runs. Bound a number with `Annotated[int, Range(1, 4096)]`; reject a
bad value in the constructor with `raise ConfigError("key", "why")`, and seqcli reports it
with the recipe's file and line. Constructors must be cheap: they also run during
`seqcli recipes validate`.

Stable: the names and signatures in `__all__`. Anything else in seqcli may change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

from seqcli.errors import ConfigError, DataError, TrainingError
from seqcli.recipe.schema import Range
from seqcli.train.config import TrainConfig

__all__ = ["Cell", "CellSpec", "ConfigError", "Data", "DataError", "Dataset", "Range", "StepResult",
           "Task", "TrainConfig"]

State = tuple[Tensor, ...]


class Cell(nn.Module):
    """One layer and one direction of a recurrence.

    Write only the recurrence; seqcli stacks layers (each with its own weights), runs a
    reversed copy for bidirectional models, drops out between layers, masks padded steps and
    supplies the initial state (zeros).

    The work is split in two so the framework can run it fast:
      * `project(x)`: everything that does not depend on the previous state, done for the
        whole sequence at once (usually one matrix product): (T, B, input_size) -> (T, B, G).
      * `step(u_t, state)`: the recurrence proper: u_t (B, G), state -> new state.
    The state is a tuple of `num_states` tensors, each (B, hidden_size); `state[0]` is the
    output h_t. Extra constructor arguments are recipe keys of `model.cell`.
    """

    num_states: ClassVar[int] = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def project(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def step(self, u: Tensor, state: State) -> State:
        raise NotImplementedError

    def scan(self, u: Tensor, state: State, mask: Tensor | None):
        """Optional: the whole recurrence at once (a parallel scan), for training.

        u (T, B, G) from `project`, state as for `step`, mask (T, B, 1) True on real steps or
        None. Return (outputs (T, B, H), final state), with padded steps leaving the state
        unchanged, or NotImplemented (the default) to have seqcli loop over `step`."""
        return NotImplemented

    @classmethod
    def fused_kernel(cls, **options) -> str | None:
        """The name of a fused PyTorch kernel computing exactly this cell ('lstm', 'gru',
        'rnn_tanh', 'rnn_relu'), with nn.LSTM's parameter layout, or None (the default)."""
        return None


@dataclass
class CellSpec:
    """A cell chosen by a recipe: the class and its extra options. Tasks pass it to
    `seqcli.cells.Recurrent` to build a (stacked, bidirectional) recurrent layer."""

    cls: type
    options: dict = field(default_factory=dict)


@dataclass
class Data:
    """What a dataset gives a task.

    `splits` maps split names ('train', 'valid', 'test') to the examples in a form the task
    understands (a 1-D token tensor for a language model). `fields` describes them so the
    task can size the model: vocabularies (`seqcli.data.vocab.Vocab`) or plain values; they
    are stored in checkpoints. `info` is plain data shown to users (sizes, sources).
    """

    splits: dict[str, Any]
    fields: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


class Dataset:
    """Builds the splits and fields. `__init__` takes the recipe's `dataset:` keys and only
    checks them (cheap); `load()` does the work."""

    def load(self) -> Data:
        raise NotImplementedError

    def load_file(self, path: str, fields: dict) -> Any:
        """Examples from one more file in this dataset's format, encoded with `fields`
        (for `seqcli evaluate --file`)."""
        raise DataError(f"dataset {type(self).__name__} cannot evaluate a separate file")


@dataclass
class StepResult:
    loss: Tensor  # scalar, mean over the batch's targets; backward() is called on it
    targets: int  # how many targets the loss averaged over (for tokens/s)
    carry: Any = None  # handed to the next train_step (e.g. a carried hidden state)


class Task:
    """Owns a shape: batching, the model's wiring, the loss, metrics and sampling.

    The task constructor takes the recipe's `task:` keys. The keyword arguments of
    `build_model` after `cell` are the recipe's `model:` keys; those of `sample` after
    `fields` are the `sample:` keys (and the options of `seqcli sample`).
    """

    #: the metric that picks the best checkpoint, and its direction
    main_metric: ClassVar[str] = "loss"
    higher_is_better: ClassVar[bool] = False

    def build_model(self, data: Data, cell: CellSpec) -> nn.Module:
        raise NotImplementedError

    def batches(self, data: Data, config: TrainConfig, epoch: int) -> Iterator[Any]:
        """Training batches for one epoch, in order (seeded by `config.seed` and `epoch`)."""
        raise NotImplementedError

    def train_step(self, model: nn.Module, batch: Any, carry: Any) -> StepResult:
        raise NotImplementedError

    def shard(self, batch: Any, rank: int, world: int) -> Any:
        """Distributed training: the part of a batch from `batches` that rank `rank` of
        `world` trains on. The default splits a list of examples; override it for other
        batch types. Every rank must get a non-empty part."""
        if isinstance(batch, list):
            from seqcli.train.distributed import shard_examples

            return shard_examples(batch, rank, world)
        raise TrainingError(f"task {type(self).__name__} cannot split its batches for distributed training "
                            f"(it needs a shard() method); run it in one process")

    def evaluate(self, model: nn.Module, data: Data, split: str, config: TrainConfig) -> dict[str, float]:
        """Metrics on one split (model already in eval mode, gradients off); must include 'loss'."""
        raise NotImplementedError

    def sample(self, model: nn.Module, fields: dict) -> list[str]:
        """Output lines. Keyword arguments after `fields` are options; an `inputs: list[str]`
        argument receives `seqcli sample --input/--input-file`."""
        raise NotImplementedError

    def check_sample(self, **options) -> None:
        """Reject sampling options that do not fit together with ConfigError(key, why)."""


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
