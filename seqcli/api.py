"""The plugin contracts: the one module a plugin author reads.

seqcli has three kinds of code plugins, and plugin packages can ship recipes too. Each is
registered under an entry-point group in the plugin package's `pyproject.toml`:

    [project.entry-points."seqcli.cells"]     mycell = "my_package.cell:MyCell"
    [project.entry-points."seqcli.tasks"]     mytask = "my_package.task:MyTask"
    [project.entry-points."seqcli.datasets"]  mydata = "my_package.data:MyData"
    [project.entry-points."seqcli.recipes"]   my_package = "my_package.recipes"   # a folder of *.yaml

A recipe names a plugin by its registered name (`cell: {name: mycell, size: 3}`), or by its
package-qualified name (`my-package:mycell`) where two packages register the same name; the
other keys are its constructor's keyword arguments, checked against the signature and type
hints before anything heavy runs. Bound a number with `Annotated[int, Range(1, 4096)]`, take
a file with `Annotated[Path, File()]` (or a folder with `Folder()`), and reject a bad value
in the constructor with `raise ConfigError("key", "why")`: seqcli reports it with the
recipe's file and line. Constructors must be cheap: they also run during
`seqcli recipes validate`.

Every plugin class states the version of this contract it was written for as a class
attribute, `api_version = "1.0"` (or the major version alone, `1`); a plugin written for
another major version, or a newer minor one, is reported as failed with the reason and is
not used. A plugin that states none is taken to target the current version.

Stable: the names in `__all__`, here and in `seqcli.layers` (the building blocks a task
wires into a model) and `seqcli.testing` (the contract kits). Anything else in seqcli may
change between releases.

This module imports nothing of seqcli's above it: errors, the schema primitives, the
training settings and the field types, all plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import torch
from torch import Tensor, nn

from seqcli.config import TrainConfig
from seqcli.deprecation import form_used
from seqcli.errors import ConfigError, DataError, TrainingError
from seqcli.metrics import HIGHER, LOWER
from seqcli.schema import File, Flag, Folder, Output, Range, Seed
from seqcli.vocab import Labels, Numeric, Vocab

__all__ = ["API_VERSION", "CONDITION", "Cell", "CellSpec", "ConfigError", "Data", "DataError", "Dataset",
           "EXPORT_CONFIG", "EXPORT_GRAPHS", "EXPORT_KINDS", "Exported", "Figure", "File", "Flag", "Folder", "Graph", "Hypothesis", "HIGHER",
           "IMAGE", "INPUT", "INPUTS", "LABEL", "LOWER", "Labels", "Numeric",
           "Output", "Prediction", "Range", "SOURCE", "SOURCE_FIRST", "Samples", "Seed", "StepResult", "TAGS", "TARGET", "TARGET_COPY", "TEXT", "Task", "TrainConfig",
           "TrainingError", "Vocab", "device_of", "shard_examples"]

#: The version of these contracts, "major.minor". A new minor version only adds (optional
#: arguments, new names); a new major version may break plugins written for an older one.
#: History: 1.0 (seqcli 0.2): the first stable contract. 1.1 (seqcli 0.3): `Cell.gates`,
#: `Cell.forget_gate` and `Cell.recurrent_weights` for `model.init`; `StepResult.sequences`
#: and `StepResult.penalty`; `TrainConfig` gains `max_epochs`, `patience` and `loss_reduction`.
#: 1.2 (seqcli 0.4): `Dataset.load_with` (encode with given vocabularies, for resume);
#: `Task.export`, `Graph` and `Exported` (`seqcli export`); `Task.sample_batch` and an
#: optional `Task.stream(model, fields, **sample options)` generator of the text each sample
#: gains per step (`seqcli serve`). 1.3 (seqcli 0.5): `seqcli.layers`, the toolkit the
#: built-in tasks are made of; `Vocab.build`; `INPUTS`; `Samples.separator`; `Flag` (short
#: and switch spellings of a sample option); `Task.batched_option`; `Task.ensemble`; the optional example keys
#: `SOURCE_FIRST` and `TARGET_COPY`; `Cell.parameter_roles` and `Cell.role`. 1.4 (seqcli 0.6):
#: `Data.ordered` and `Data.gap` (forward-chaining cross-validation of ordered examples);
#: `EXPORT_CONFIG` and `EXPORT_GRAPHS` (what each kind of export holds, checked);
#: `Task.directions` and `Task.direction` (which way each metric is better; `HIGHER`, `LOWER`);
#: `ExampleTask.batch` (a batch built from what the model is: its vocabularies, whether it copies);
#: `Hypothesis`, `Prediction` and `Samples.of` (typed outputs: a task's `sample` may return
#: predictions, whose text is the line seqcli prints).
API_VERSION = "1.4"

# Field names: the keys of `Data.fields` and of each example that the built-in tasks read.
#
#   task            fields                               one example (a dict of tensors)
#   language_model  TEXT: Vocab                          (the split is one 1-D LongTensor of ids)
#   classify        INPUT: Vocab|Numeric, LABEL: Labels  INPUT (T,) long or (T, D) float; LABEL () long
#   tag             INPUT: Vocab|Numeric, TAGS: Labels   INPUT as above; TAGS (T,) long
#   seq2seq         SOURCE: Vocab, TARGET: Vocab         SOURCE (S,) long; TARGET (T,) long (no <bos>/<eos>)
#   generate        CONDITION: Labels|Numeric, TARGET    CONDITION () long or (D,) float; TARGET (T,) long
#   forecast        INPUT: Numeric, TARGET: Numeric      INPUT (T, D) float; TARGET (H, D') float
#   glimpse         INPUT: Numeric, LABEL: Labels        INPUT (H, W) float image; LABEL () long
#   draw            INPUT: Numeric, LABEL: Labels        as glimpse, pixels in [0, 1]
#
# Example-based splits are lists of such dicts. Numbers are raw: tasks scale them with the
# mean/std that `Numeric.fit` records.
TEXT = "text"
INPUT = "input"
LABEL = "label"
TAGS = "tags"
SOURCE = "source"
TARGET = "target"
#: API 1.3, optional in a seq2seq example, for copy attention (`model.copy`): SOURCE_FIRST (S,)
#: long, each source position's first position with the same token; TARGET_COPY (T,) long,
#: each target token's first position in the source, or -1. They say which words are the same
#: where the vocabularies cannot (a word neither vocabulary has); the `pairs` dataset gives them
#: for the pairs with an <unk> (without them, the ids say which words are the same).
SOURCE_FIRST = "source_first"
TARGET_COPY = "target_copy"
CONDITION = "condition"
IMAGE = "image"

#: The `Task.sample` argument that takes the user's inputs, one output per input: `seqcli
#: sample --input/--input-file`, a served request's "inputs", `Model.predict`. A task whose
#: `sample` has no such argument generates from its options alone (a language model).
INPUTS = "inputs"

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
    output h_t. Extra constructor arguments are recipe keys of `model.cell`; they are checked
    by `seqcli recipes validate` by building the cell once with tiny sizes.
    """

    num_states: ClassVar[int] = 1
    #: For `model.init` (API 1.1): the parameters that multiply the state (initialised
    #: orthogonally by `init: orthogonal`), how many gates are stacked in each weight's rows
    #: (each block is initialised on its own), and which of those blocks is a forget gate
    #: (`init.forget_bias` sets its share of every bias vector), if any.
    recurrent_weights: ClassVar[tuple[str, ...]] = ("weight_hh",)
    gates: ClassVar[int] = 1
    forget_gate: ClassVar[int | None] = None
    #: API 1.3: what a parameter is, by name, where `role` would not guess it: "recurrent",
    #: "input" (another weight matrix), "bias", or "own" (left as the cell made it).
    parameter_roles: ClassVar[dict[str, str]] = {}

    @classmethod
    def role(cls, name: str, parameter: Tensor) -> str:
        """What `model.init` takes parameter `name` for: as `parameter_roles` says; else
        "recurrent" if it is in `recurrent_weights`, "input" if it is a matrix, "bias" if its
        name starts with "bias", and otherwise "own": a vector is never given a matrix's init."""
        if name in cls.parameter_roles:
            return cls.parameter_roles[name]
        if name in cls.recurrent_weights:
            return "recurrent"
        if parameter.dim() > 1:
            return "input"
        return "bias" if name.startswith("bias") else "own"

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
        unchanged, or NotImplemented (the default) to have seqcli loop over `step`. A loop of
        your own should walk `u.unbind(0)`, never `u[t]`: indexing makes every step's
        backward build a full-size zero tensor (measured several times slower)."""
        return NotImplemented

    @classmethod
    def fused_kernel(cls, **options) -> str | None:
        """The name of a fused PyTorch kernel computing exactly this cell ('lstm', 'gru',
        'rnn_tanh', 'rnn_relu'), with nn.LSTM's parameter layout, or None (the default)."""
        return None


@dataclass
class CellSpec:
    """A cell chosen by a recipe: the class and its extra options. Tasks pass it to
    `seqcli.layers.Recurrent` to build a (stacked, bidirectional) recurrent layer."""

    cls: type
    options: dict = field(default_factory=dict)


@dataclass
class Data:
    """What a dataset gives a task.

    `splits` maps split names to the examples in a form the task understands (see the field
    table above). 'train' and 'valid' are required for training: seqcli refuses, before it
    creates a run directory, a dataset that gives no 'valid' split; 'test' is optional
    (`seqcli evaluate --split test`). `fields` describes the examples so the task can size
    the model: `Vocab`, `Labels`, `Numeric` or plain data; they are stored in checkpoints.
    `info` is plain data shown to users (sizes, sources).

    API 1.4: `ordered` says the examples are in time order, within each split and across
    them (every 'valid' example after every 'train' one), as windows of a series are:
    cross-validation then forward-chains (each fold validates on a block after everything it
    trains on) instead of dealing shuffled examples. `gap` is how many examples it leaves out
    between the two, so that no training example overlaps a validation example's targets
    (windows with a horizon of H steps, one step apart: H - 1).
    """

    splits: dict[str, Any]
    fields: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    ordered: bool = False
    gap: int = 0


class Dataset:
    """Builds the splits and fields. `__init__` takes the recipe's `dataset:` keys and only
    checks them (cheap); `load()` does the work."""

    def load(self) -> Data:
        raise NotImplementedError

    def load_with(self, fields: dict) -> Data:
        """Optional (API 1.2): what `load()` gives, but encoded with `fields` instead of
        fields learnt from the training split: a resumed run keeps the vocabularies it
        started with. The default returns NotImplemented; a resumed run whose re-learned
        fields differ from its checkpoint's is then refused."""
        return NotImplemented

    def load_file(self, path: str, fields: dict) -> Any:
        """Examples from one more file in this dataset's format, encoded with `fields`
        (for `seqcli evaluate --file`)."""
        raise DataError(f"dataset {type(self).__name__} cannot evaluate a separate file")


@dataclass
class StepResult:
    loss: Tensor  # scalar, mean over the batch's targets; backward() is called on it
    targets: int  # how many targets the loss averaged over (for tokens/s)
    carry: Any = None  # handed to the next train_step (e.g. a carried hidden state)
    sequences: int | None = None  # how many sequences they belong to (for train.loss_reduction=sequence_sum)
    penalty: Tensor | None = None  # a regulariser added to the loss for backward(), not logged as loss


@dataclass
class Figure:
    """A picture a task offers from `sample`: `draw(path)` writes it as a PNG (matplotlib is
    imported inside, only when it is drawn); `data` is the numbers it shows, as plain data
    (seqcli writes them as JSON beside the picture)."""

    draw: Callable[[str], None]
    data: Any = None


@dataclass
class Graph:
    """One piece of a trained model as a function of tensors, for `seqcli export` (API 1.2).

    `module(*inputs)` takes the tensors of `inputs` in their order (each an example: any
    batch size and length) and returns a tuple of tensors in the order of `outputs`.
    `dynamic` names the axes whose size varies (input name -> {axis: "batch" | "time" | ...});
    every other size is fixed by the example."""

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)


#: How the reference runner of an export (run.py) uses its graphs, by `Exported.kind`:
#:   "generator"  graph "step": token (B,), states -> logits (B, V), states (language models)
#:   "writer"     graphs "start": inputs -> states; "step": token (B,), states -> logits (B, V),
#:                states (greedy, sampling, beam search; seq2seq, generate)
#:   "labels"     graph "model": inputs -> logits (B, labels) (classify, glimpse)
#:   "tags"       graph "model": inputs -> logits (T, B, tags)
#:   "values"     graph "model": inputs -> values (B, ...) in the data's units (forecast)
#:   "image"      graph "model": labels (B,) -> images (B, H, W) in [0, 1] (draw)
EXPORT_KINDS = ("generator", "writer", "labels", "tags", "values", "image")

#: API 1.4: what `Exported.config` holds, by kind: key -> what it is. A key whose name ends
#: in "?" may be left out. `seqcli export` refuses a config that lacks a key, or names a field
#: the model does not have, in one line, before anything is written.
EXPORT_CONFIG = {
    "generator": {"field": "the field (a Vocab) of the text", "states": "the names of the step's state inputs, "
                  "in order (each (layers, B, H))", "start": "the token id a sample without a prime starts from"},
    "writer": {"input": "the field the inputs are (a Vocab, Numeric or Labels)", "field": "the field (a Vocab) of "
               "the outputs", "bos": "the id the first step reads", "eos": "the id that ends an output",
               "carried": "the names of the state tensors each step changes", "fixed": "the names of the state "
               "tensors that stay (the source's memory)", "batch_axis": "each state tensor's batch axis, by name",
               "copy?": "true for copy attention: the start graph also reads each source position's output id"},
    "labels": {"input": "the field the inputs are", "labels": "the field (Labels) of the classes",
               "image?": "[rows, columns]: inputs are images of this size"},
    "tags": {"input": "the field the inputs are", "labels": "the field (Labels) of the tags"},
    "values": {"input": "the field (Numeric) the inputs are", "target": "the field (Numeric) of the values"},
    "image": {"labels": "the field (Labels) of the classes", "shades": "the characters that draw an image, "
              "lightest first"},
}
#: The graphs each kind's runner calls, by name.
EXPORT_GRAPHS = {"generator": ("step",), "writer": ("start", "step"), "labels": ("model",), "tags": ("model",),
                 "values": ("model",), "image": ("model",)}


@dataclass
class Exported:
    """What `Task.export` returns: the graphs, and how the runner uses them (`kind`, one of
    EXPORT_KINDS); `config` is plain data the runner reads (which fields the inputs and
    outputs are, special token ids, the names of carried states)."""

    kind: str
    graphs: list[Graph]
    config: dict = field(default_factory=dict)


@dataclass
class Hypothesis:
    """API 1.4: one output a task gives for an input: what it writes (`output`: text, a label,
    numbers as text) and, where the task has one, its `score` (a beam's length-normalised
    log-probability, a label's probability)."""

    output: str
    score: float | None = None


@dataclass
class Prediction:
    """API 1.4: one input's result, typed: its `hypotheses`, best first (one, or the n best),
    `details` the task has for it (plain data), and `text`, the output as `seqcli sample`
    prints it. `seqcli sample --json`, `seqcli serve`'s "predictions", `seqcli.load(...)
    .predictions` and the export runner's `--json` give these fields."""

    text: str
    hypotheses: list[Hypothesis] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @classmethod
    def ranked(cls, hypotheses: list[Hypothesis], listed: bool) -> Prediction:
        """A writer's outputs: the best one's text, or, `listed` (n-best), a `text<TAB>score`
        line per hypothesis with a blank line after them."""
        text = "\n".join(f"{h.output}\t{h.score:.4f}" for h in hypotheses) + "\n" if listed else hypotheses[0].output
        return cls(text, list(hypotheses))

    @classmethod
    def labelled(cls, hypotheses: list[Hypothesis]) -> Prediction:
        """Labels with their probabilities, on one line: `label<TAB>p<TAB>label<TAB>p...`."""
        return cls("\t".join(f"{h.output}\t{h.score:.4f}" for h in hypotheses), list(hypotheses))

    def to_data(self) -> dict:
        """As JSON: text, hypotheses [{output, score}], and details where there are any."""
        return {"text": self.text, "hypotheses": [{"output": h.output, "score": h.score} for h in self.hypotheses],
                **({"details": self.details} if self.details else {})}


@dataclass
class Samples:
    """What `Task.sample` returns: the output lines, and pictures keyed by the sample option
    that asked for them (an option typed `Annotated[str | None, Output(".png")]`). seqcli
    writes the lines and the pictures; a task never writes files itself. API 1.4: `Samples.of`
    builds it from typed `Prediction`s (a task may also return a list of them); for a task
    that gives lines only, each line is its own prediction."""

    lines: list[str]
    figures: dict[str, Figure] = field(default_factory=dict)
    #: API 1.3: what goes between two outputs when they are printed or written together: a
    #: newline (one output per line, an output per input); a blank line for outputs that are
    #: paragraphs (a language model's samples). An output may hold several lines (n-best lists).
    separator: str = "\n"
    #: API 1.4: one per line, typed (None: the lines are all there is)
    predictions: list[Prediction] | None = None

    @classmethod
    def of(cls, predictions: list[Prediction], figures: dict | None = None, separator: str = "\n") -> Samples:
        return cls([p.text for p in predictions], dict(figures or {}), separator, list(predictions))

    def typed(self) -> list[Prediction]:
        """The predictions, one per line: a line without one is its own single hypothesis."""
        if self.predictions is not None:
            return self.predictions
        return [Prediction(line, [Hypothesis(line)]) for line in self.lines]


class Task:
    """Owns a shape: batching, the model's wiring, the loss, metrics and sampling.

    Signatures are the schema: the task constructor's keyword arguments are the recipe's
    `task:` keys; `build_model`'s after `cell` are the `model:` keys; `sample`'s after
    `fields` are the `sample:` keys and, all the same, the options of `seqcli sample` (shown
    by `seqcli sample RUN --help` with their types and defaults); `evaluate`'s after `config`
    are options of `seqcli evaluate`. The positional arguments of every method here are fixed
    for a major version of the API: new information reaches a plugin as new optional fields
    of `TrainConfig` and `Data`, never as a new argument, so a task written for 1.0 keeps
    working with every 1.x.
    """

    #: the metric that picks the best checkpoint (its direction: `directions`)
    main_metric: ClassVar[str] = "loss"
    #: API 1.0-1.3: the main metric's direction, where `directions` does not give it
    higher_is_better: ClassVar[bool] = False
    #: API 1.4: each metric the task reports -> HIGHER or LOWER (seqcli.metrics): which way it
    #: is better, for the best checkpoint, early stopping, plots, sweeps and `average --best`.
    #: A subclass adds to its bases' (they are merged); `direction(metric)` reads them.
    directions: ClassVar[dict[str, str]] = {"loss": LOWER}

    @classmethod
    def direction(cls, metric: str) -> str | None:
        """HIGHER or LOWER for a metric this task reports, None when it does not say."""
        for klass in cls.__mro__:
            declared = klass.__dict__.get("directions")
            if isinstance(declared, dict) and metric in declared:
                return declared[metric]
        if metric == cls.main_metric:
            if any("higher_is_better" in vars(klass) for klass in cls.__mro__ if klass is not Task):
                form_used(cls, "Task.higher_is_better")
            return HIGHER if cls.higher_is_better else LOWER
        return None
    #: what `targets` in StepResult counts, for the progress line ("tokens", "examples", ...)
    unit: ClassVar[str] = "tokens"
    #: API 1.3, for a task without `inputs`: the sample option that requests decoded together
    #: by `sample_batch` may differ in (a language model's "prime"); None: none may.
    batched_option: ClassVar[str | None] = None

    def build_model(self, data: Data, cell: CellSpec) -> nn.Module:
        raise NotImplementedError

    def batches(self, data: Data, config: TrainConfig, epoch: int) -> Iterator[Any]:
        """Training batches for one epoch, in order (seeded by `config.seed` and `epoch`)."""
        raise NotImplementedError

    def train_step(self, model: nn.Module, batch: Any, carry: Any) -> StepResult:
        """One batch's loss. `model` is always the task's own model as `build_model` made it,
        never a DistributedDataParallel wrapper: in distributed training seqcli wraps this
        whole method, so gradients are averaged whatever parts of the model it calls. seqcli
        calls backward(), clips and steps the optimizer."""
        raise NotImplementedError

    def shard(self, batch: Any, rank: int, world: int) -> Any:
        """Distributed training: the part of a batch from `batches` that rank `rank` of
        `world` trains on. The default splits a list of examples; override it for other
        batch types. Every rank must get a non-empty part, and together the ranks must
        cover the batch exactly once (`seqcli.testing.check_task` checks it)."""
        if isinstance(batch, list):
            return shard_examples(batch, rank, world)
        raise TrainingError(f"task {type(self).__name__} cannot split its batches for distributed training "
                            f"(it needs a shard() method); run it in one process")

    def evaluate(self, model: nn.Module, data: Data, split: str, config: TrainConfig) -> dict[str, float]:
        """Metrics on one split (model already in eval mode, gradients off); must include
        'loss' and `main_metric`. Must honour `config.eval_batches` (when set, score at most
        that many batches of `config.batch_size`): training evaluates with it to stay fast."""
        raise NotImplementedError

    def sample(self, model: nn.Module, fields: dict) -> list[str] | Samples:
        """Outputs (or `Samples`, with pictures). Keyword arguments after `fields` are
        options; an `inputs: list[str]` argument (`INPUTS`) receives `seqcli sample
        --input/--input-file`, and then there is one output per input, in order. An option
        annotated with a `Flag` has a short spelling on the command line."""
        raise NotImplementedError

    def check_sample(self, **options) -> None:
        """Reject sampling options that do not fit together with ConfigError(key, why)."""

    def sample_batch(self, model: nn.Module, fields: dict, requests: list[dict]) -> list:
        """Optional (API 1.2): several requests' checked `sample` options, decoded together
        (`seqcli serve` batches requests that differ only in their `inputs`, or a language
        model's `prime`); one `sample` result per request, in order. The default returns
        NotImplemented: seqcli then decodes a task that takes `inputs` in one call over all
        of them, and any other one request at a time."""
        return NotImplemented

    def ensemble(self, models: list[nn.Module]) -> nn.Module:
        """Optional (API 1.3): several models this task built, from runs on the same data,
        as one module that `sample` and `evaluate` take in place of a model (`seqcli sample
        RUN1 RUN2 ...`): the mean of their probabilities at every step, or of their outputs
        (`seqcli.layers` has the wrappers). The default returns NotImplemented: seqcli then
        says the task cannot combine models."""
        return NotImplemented

    def export(self, model: nn.Module, fields: dict) -> Exported:
        """Optional (API 1.2): the model as graphs that run without seqcli (`seqcli export`).
        `seqcli.layers.traceable(model)` gives a copy whose recurrent stacks read whole
        sequences in a way exporters trace. The default returns NotImplemented: `seqcli
        export` then says the task cannot be exported."""
        return NotImplemented


def device_of(model: nn.Module) -> torch.device:
    """The device a model's parameters are on (where to put its inputs)."""
    return next(model.parameters()).device


def shard_examples(examples: list, rank: int, world: int) -> list:
    """This rank's part of a batch of examples; a batch smaller than the number of ranks
    gives its last example to the ranks that would get none (every rank must take a step)."""
    part = examples[rank::world]
    return part or examples[-1:]
