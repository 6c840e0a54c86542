"""Using a trained model: load it from a checkpoint alone, sample, predict, evaluate.

`seqcli sample`, `seqcli evaluate`, the sample at the end of training and the Python API all
come through here:

    import seqcli
    model = seqcli.load("runs/reverse")            # a run directory or a checkpoint file
    model.predict(["abc", "hello"])                # -> ['cba', 'olleh']
    model.sample(prime="The ", length=100).lines   # language models
    model.evaluate(split="test")                   # -> {'loss': ..., 'exact_match': ...}

Options are a task's own: the keyword arguments of its `sample` (after `fields`) and of its
`evaluate` (after `config`), checked against their signatures like recipe keys. Pictures a
task offers (`Samples.figures`) are written here, and only here, never replacing a file
unless asked to.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from seqcli import build, registry
from seqcli.api import INPUTS, Data, Prediction, Samples, Task
from seqcli.errors import CheckpointError, ConfigError, DataError, SeqcliError
from seqcli.recipe.resolve import Recipe
from seqcli.schema import Output, check_args, method_parameters, parameters
from seqcli.schema import flag as option_flag
from seqcli.train import checkpoint as ckpt_io
from seqcli.train.checkpoint import Checkpoint

SAMPLE_SKIP = ("self", "model", "fields")
EVALUATE_SKIP = ("self", "model", "data", "split", "config")


def sample_parameters(task_cls) -> dict:
    """name -> (type hint, default) of the options a task's `sample` takes."""
    return method_parameters(task_cls, "sample", SAMPLE_SKIP)


def evaluate_parameters(task_cls) -> dict:
    """name -> (type hint, default) of the options a task's `evaluate` declares."""
    return parameters(task_cls.evaluate, EVALUATE_SKIP)


@functools.lru_cache(maxsize=None)
def sample_outputs(task_cls) -> dict[str, Output]:
    """The options of a task's `sample` that name a file to write (read once per class: a
    server checks every request's options)."""
    return outputs(sample_parameters(task_cls))


def outputs(params: dict) -> dict[str, Output]:
    """The options that name a file to write (`Annotated[..., Output(".png")]`)."""
    import typing

    found = {}
    for name, (hint, _) in params.items():
        for arg in [hint, *typing.get_args(hint)]:
            if typing.get_origin(arg) is typing.Annotated:
                for meta in typing.get_args(arg)[1:]:
                    if isinstance(meta, Output):
                        found[name] = meta
    return found


def sample_options(task: Task, recipe: Recipe, given: dict, base: str | None = None) -> dict:
    """The recipe's `sample:` values with `given` on top, checked against the task's `sample`
    signature and its `check_sample`. A problem is a ConfigError naming the option."""
    accepted = sample_parameters(type(task))
    for key in given:
        if key not in accepted:
            raise ConfigError(key, f"the {recipe.task.name} task does not take this option "
                                   f"(it takes: {', '.join(accepted) or 'none'})")
    pictures = sample_outputs(type(task))
    options = {k: v for k, v in recipe.sample.items() if k not in pictures}
    options.update(given)
    values, problems = check_args(task.sample, options, skip=SAMPLE_SKIP, base=base)
    if problems:
        raise ConfigError(*problems[0])
    task.check_sample(**values)
    return values


def check_figures(values: dict, params: dict, force: bool, inputs: tuple = ()) -> dict[str, Path]:
    """The pictures asked for, checked before any work: option -> path (and its .json)."""
    from seqcli import plots
    from seqcli.files import check_output

    wanted = {}
    for name in outputs(params):
        if values.get(name) is not None:
            flag = option_flag(name)
            path = plots.output_file(values[name], force, flag, inputs)
            check_output(path.with_suffix(".json"), flag, replace=force, inputs=inputs)
            if path in wanted.values():
                raise SeqcliError(f"{flag} {values[name]}: another picture is written there too")
            wanted[name] = path
    if wanted:
        plots.pyplot()  # matplotlib missing: say so now, not after the work
    return wanted


def write_figures(samples: Samples, wanted: dict[str, Path]) -> list[Path]:
    """Draw each picture asked for, and write its numbers as JSON beside it."""
    written = []
    for name, path in wanted.items():
        figure = samples.figures.get(name)
        if figure is None:
            continue
        draw_into(path, figure.draw)
        if figure.data is not None:
            from seqcli.files import write_atomic

            write_atomic(path.with_suffix(".json"), json.dumps(figure.data))
        written.append(path)
    return written


def draw_into(path: Path, draw) -> None:
    """A task's `Figure.draw(path)`, made whole-or-nothing: it draws into a temporary folder
    beside `path` (the file keeps its name, so its format too), then the file is renamed in."""
    import os
    import shutil

    from seqcli.files import check_replaceable, temporary

    check_replaceable(path)
    folder = temporary(Path(path))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        draw(str(folder / Path(path).name))
        os.replace(folder / Path(path).name, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def task_class(ckpt: Checkpoint):
    """The task class a checkpoint was trained with (imports no model code beyond it)."""
    name, package = ckpt.plugin_name("task")
    return registry.load("task", name, package)


def task_of(ckpt: Checkpoint) -> Task:
    """The task a checkpoint was trained with, constructed (cheap: no model, no data)."""
    return build.task(ckpt.recipe, packages_of(ckpt))


def packages_of(ckpt: Checkpoint) -> dict:
    """kind -> the package the checkpoint recorded for it."""
    return {kind: record.package for kind, record in ckpt.plugins.items()}


def as_samples(result) -> Samples:
    if isinstance(result, Samples):
        return result
    if isinstance(result, (list, tuple)) and all(isinstance(line, str) for line in result):
        return Samples(list(result))
    if isinstance(result, (list, tuple)) and all(isinstance(p, Prediction) for p in result):
        return Samples.of(list(result))
    raise SeqcliError(f"the task's sample() returned {type(result).__name__}, not a list of lines, of Predictions, "
                      f"or Samples")


def run_sample(task: Task, model: torch.nn.Module, fields: dict, values: dict) -> Samples:
    """`task.sample` with checked options, in eval mode without gradients."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return as_samples(task.sample(model, fields, **values))
    finally:
        model.train(was_training)


def sample_together(task: Task, model: torch.nn.Module, fields: dict, requests: list[dict]) -> list[Samples]:
    """Several requests' checked options (equal but for their `inputs`, or `prime`), decoded
    together: through the task's `sample_batch`; else, for a task that takes inputs, one
    `sample` over all of them, its lines split back by request; else one at a time."""
    if len(requests) == 1:
        return [run_sample(task, model, fields, requests[0])]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            together = task.sample_batch(model, fields, requests)
            if together is not NotImplemented:
                return [as_samples(r) for r in together]
            if INPUTS not in requests[0]:
                return [as_samples(task.sample(model, fields, **r)) for r in requests]
            together = as_samples(task.sample(model, fields, **{**requests[0], INPUTS: [
                text for r in requests for text in r[INPUTS]]}))
    finally:
        model.train(was_training)
    out, start, typed = [], 0, together.typed()
    for r in requests:
        end = start + len(r[INPUTS])
        out.append(Samples(together.lines[start:end], separator=together.separator, predictions=typed[start:end]))
        start = end
    return out


def stream(task: Task, model: torch.nn.Module, fields: dict, values: dict):
    """`task.stream` with checked options, in eval mode without gradients: the text each
    sample gains, step by step."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield from task.stream(model, fields, **values)
    finally:
        model.train(was_training)


@dataclass
class Model:
    """A trained model, rebuilt from its checkpoint alone (no recipe file, no data)."""

    checkpoint: Checkpoint
    task: Task
    model: torch.nn.Module
    fields: dict
    members: list | None = None  # an ensemble: the checkpoints it combines (the first is `checkpoint`)

    @property
    def recipe(self) -> Recipe:
        return self.checkpoint.recipe

    @property
    def path(self) -> str:
        return self.checkpoint.path

    def sample(self, **options) -> Samples:
        """The task's sampling, with its own options (unset ones from the recipe's `sample:`)."""
        return run_sample(self.task, self.model, self.fields, sample_options(self.task, self.recipe, options))

    def predict(self, inputs: list[str], **options) -> list[str]:
        """One output per input, for tasks that take inputs (all but language models)."""
        return [p.text for p in self.predictions(inputs, **options)]

    def predictions(self, inputs: list[str], **options) -> list[Prediction]:
        """As `predict`, typed: per input its hypotheses (output and score, best first), the
        details the task has, and the text `predict` gives."""
        if INPUTS not in sample_parameters(type(self.task)):
            raise ConfigError(INPUTS, f"the {self.recipe.task.name} task takes no inputs; use sample()")
        return self.sample(**{INPUTS: list(inputs)}, **options).typed()

    def evaluate(self, split: str = "test", file: str | None = None, **options) -> dict[str, float]:
        """Metrics on a split of the dataset the recipe names (re-read from its files), or on
        another file in the dataset's format."""
        values, problems = check_args(self.task.evaluate, options, skip=EVALUATE_SKIP)
        if problems:
            raise ConfigError(*problems[0])
        if file is None:  # the stored recipe's files are read again: they must be there, and be files
            try:
                build.check_stored_data(self.recipe, self.packages)
            except DataError as exc:
                raise DataError(f"{exc}; score another file with --file") from None
        if file is not None:
            from seqcli.schema import File, Problem

            try:
                path = File().apply(file)
            except Problem as exc:
                raise DataError(f"--file: {exc.message}") from None
            data = Data(splits={"file": build.dataset(self.recipe, self.packages).load_file(path, self.fields)},
                        fields=self.fields)
            split = "file"
        else:
            data = build.data(self.recipe, self.packages)
            changed = [k for k in self.fields if k in data.fields and data.fields[k] != self.fields[k]]
            if changed:
                raise DataError(f"the dataset's {', '.join(changed)} vocabulary differs from the checkpoint's: "
                                f"its files changed since training; score a file with --file instead")
        from seqcli.train.stepper import evaluate

        return evaluate(self.task, self.model, data, split, self.recipe.train, values)

    @property
    def packages(self) -> dict:
        """kind -> the package that provided the run's dataset, task and cell."""
        return packages_of(self.checkpoint)

    @property
    def plugins(self) -> dict:
        """kind ("dataset", "task", "cell") -> the plugin the run used: `.name`, `.package`
        (the distribution that provided it: "seqcli" for seqcli's own), `.version` and
        `.qualified` ("package:name"), as the checkpoint recorded them."""
        return dict(self.checkpoint.plugins)

    @property
    def versions(self) -> dict:
        """The seqcli version and plugin API version the checkpoint was written with."""
        return {"seqcli": self.checkpoint.seqcli_version, "api": self.checkpoint.api_version}


def load(path, which: str = "best", device: str = "cpu") -> Model:
    """A run directory (its `which` checkpoint: 'best' or 'last') or a checkpoint file; a
    list of them: one ensemble of their models (`Task.ensemble`)."""
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    return from_checkpoints([ckpt_io.load(p, which) for p in paths], device)


def from_checkpoint(ckpt: Checkpoint, device: str = "cpu") -> Model:
    """The model a checkpoint describes, with its weights, on `device`."""
    from seqcli.train.device import pick_device

    packages = packages_of(ckpt)
    task = build.task(ckpt.recipe, packages)
    try:
        model = build.model(task, Data(splits={}, fields=ckpt.fields, info=ckpt.data_info), ckpt.recipe, packages)
    except SeqcliError:
        raise
    except Exception as exc:  # fields that do not describe what the task needs (a damaged file)
        raise CheckpointError(f"{ckpt.path}: damaged checkpoint: the model cannot be built from its fields "
                              f"({', '.join(ckpt.fields)}): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                              ) from None
    ckpt_io.load_weights(model, ckpt)
    model.to(pick_device(device)).eval()
    return Model(ckpt, task, model, ckpt.fields)


def from_checkpoints(ckpts: list[Checkpoint], device: str = "cpu") -> Model:
    """One checkpoint's model, or several as one ensemble (`Task.ensemble`): they must be of
    the same task (and package) and have the same vocabularies, labels and scales."""
    loaded = [from_checkpoint(c, device) for c in ckpts]
    if len(loaded) == 1:
        return loaded[0]
    first = loaded[0]
    for other in loaded[1:]:
        mine, theirs = first.checkpoint.plugins.get("task"), other.checkpoint.plugins.get("task")
        if (mine and mine.qualified) != (theirs and theirs.qualified):
            raise SeqcliError(f"{other.path}: a {other.recipe.task.name} model, {first.path} a "
                              f"{first.recipe.task.name} one; an ensemble combines models of one task")
        changed = sorted(k for k in set(first.fields) | set(other.fields) if first.fields.get(k) != other.fields.get(k))
        if changed:
            raise SeqcliError(f"{other.path}: its {', '.join(changed)} differ{'s' if len(changed) == 1 else ''} from "
                              f"{first.path}'s; an ensemble combines models trained on the same data")
    combined = first.task.ensemble([m.model for m in loaded])
    if combined is NotImplemented:
        raise SeqcliError(f"the {first.recipe.task.name} task cannot combine models (it has no Task.ensemble)")
    return Model(first.checkpoint, first.task, combined.eval(), first.fields, members=[m.checkpoint for m in loaded])


def input_form(fields: dict, takes_inputs: bool) -> dict:
    """What an input is, for a server's page: text, numbers ('a b; c d') or a label."""
    from seqcli.vocab import Labels, Numeric, Vocab

    if not takes_inputs:
        return {"kind": "prime"}
    for name in ("source", "input", "condition", "label"):
        field = fields.get(name)
        if isinstance(field, Labels):
            return {"kind": "label", "labels": field.names}
        if isinstance(field, Numeric):
            return {"kind": "numbers", "dim": field.dim, "steps": field.steps}
        if isinstance(field, Vocab):
            return {"kind": "text", "level": field.level}
    return {"kind": "text"}


def checkpoint_metrics(ckpt: Checkpoint, run: str | None = None) -> dict:
    """The validation record of a checkpoint's step (its best step, for a best checkpoint),
    from its run's metrics.jsonl (`run`: the run folder or checkpoint it was loaded from), or
    the metrics the checkpoint itself holds."""
    from seqcli import runfolder

    folder = (runfolder.of_checkpoint(run) if run is not None else None) or runfolder.of_checkpoint(ckpt.path)
    records = folder.validation_records() if folder is not None else []
    step = ckpt.best.step if ckpt.best else ckpt.step
    return next((r for r in records if r.get("step") == step), ckpt.metrics or {})
