"""Check a whole recipe and resolve it to plain data with every default filled in.

Every problem is collected, each as `file:line: key: what is wrong`, and reported together
before any data is read or any model is built.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import yaml

from seqcli import registry
from seqcli.config import DEFAULT_OPTIMIZER, TrainConfig
from seqcli.errors import ConfigError, PluginError, RecipeError, SeqcliError, did_you_mean
from seqcli.recipe.load import Origins, apply_overrides, locate, read
from seqcli.deprecation import rename_keys
from seqcli.schema import check_args, construct, method_parameters
from seqcli.data import folds
from seqcli.nn import pretrained
from seqcli.nn.init import INITS
from seqcli.optim import AVERAGING, OPTIMIZERS, SCHEDULERS

SECTIONS = ("description", "dataset", "task", "model", "train", "sample")
REQUIRED = ("dataset", "task", "model")
#: sizes a cell is built with once during validation, so its constructor can check its options
PROBE_SIZES = {"input_size": 2, "hidden_size": 2}


@dataclass(frozen=True)
class Choice:
    """A plugin a recipe chose: its name as written (plain or `package:name`) and its
    resolved options."""

    name: str
    options: dict = field(default_factory=dict)

    def as_data(self) -> dict:
        return {"name": self.name, **copy.deepcopy(self.options)}


@dataclass
class Recipe:
    """A checked recipe, every default filled in. Plain data throughout: `to_data()` is what
    run directories and checkpoints store, and `from_data` checks it again on the way back."""

    dataset: Choice
    task: Choice
    cell: Choice
    model: dict  # the task's build_model keys (sizes, dropout, ...)
    train: TrainConfig
    sample: dict
    init: dict | None = None  # model.init: {name, **options} (None: each layer's own)
    embeddings: dict | None = None  # model.embeddings: {path, freeze} (None: none from a file)
    folds: dict | None = None  # dataset.folds and dataset.fold: {folds, fold} (None: the dataset's own splits)
    description: str = ""
    source: str = "?"

    def to_data(self) -> dict:
        data = {"description": self.description} if self.description else {}
        data.update({"dataset": {**self.dataset.as_data(), **(self.folds or {})}, "task": self.task.as_data(),
                     "model": {"cell": self.cell.as_data(), **({"init": dict(self.init)} if self.init else {}),
                               **({"embeddings": {k: str(v) if k == "path" else v for k, v in self.embeddings.items()}}
                                  if self.embeddings else {}),
                               **copy.deepcopy(self.model)},
                     "train": self.train.to_dict(), "sample": copy.deepcopy(self.sample)})
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_data(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_data(cls, data, source: str) -> Recipe:
        """A stored recipe (a checkpoint's, a run directory's) checked as strictly as a file."""
        if not isinstance(data, dict):
            raise RecipeError([f"{source}: the stored recipe is not a mapping"])
        return resolve(copy.deepcopy(data), Origins(source))

    def with_overrides(self, overrides: list[str], source: str) -> Recipe:
        data = self.to_data()
        origins = Origins(source)
        apply_overrides(data, origins, list(overrides))
        return resolve(data, origins)


def load_recipe(name_or_path: str, overrides: list[str] = ()) -> Recipe:
    """Read, override and check a recipe (a file path or a bundled recipe's name)."""
    path = locate(name_or_path)
    data, origins = read(path)
    apply_overrides(data, origins, list(overrides))
    return resolve(data, origins)


def referenced_paths(path) -> list[str]:
    """The paths a recipe file names relative to its own folder, as written: the values of
    its File and Folder keys (a dataset's `path`, ...), found by checking the recipe."""
    import os

    data, origins = read(path)
    resolved = resolve(copy.deepcopy(data), origins).to_data()
    folder, found = os.path.dirname(os.path.abspath(path)), []

    def walk(raw, done) -> None:
        if isinstance(raw, dict) and isinstance(done, dict):
            for key, value in raw.items():
                walk(value, done.get(key))
        elif isinstance(raw, str) and isinstance(done, str) and not os.path.isabs(raw) and raw != done \
                and done == os.path.abspath(os.path.join(folder, raw)):
            found.append(raw)

    walk(data, resolved)
    return found


def copy_recipe(name: str, dest, force: bool = False) -> list:
    """Copy a recipe (a file, or a bundled or plugin recipe's name) to `dest` (a file, or a
    folder to put it in), with the files it names relative to itself, placed the same way
    beside the copy so it runs from there. Every target is checked before anything is
    written: an existing one is replaced only with `force`. The paths written, recipe first."""
    import shutil
    from pathlib import Path

    from seqcli.files import check_output, write_atomic

    source = locate(name)
    target = Path(dest)
    if target.is_dir():
        target = target / f"{source.stem}.yaml"
    plan = [(source, check_output(target, "copy:", replace=force, inputs=(source,)))]
    for relative in referenced_paths(source):
        origin, destination = source.parent / relative, target.parent / relative
        if not Path(relative).parts or ".." in Path(relative).parts:
            raise SeqcliError(f"copy: {source} names {relative!r}, outside its own folder: copy the recipe as a "
                              f"file and give the path yourself")
        if origin.is_dir():
            if destination.exists() or destination.is_symlink():
                raise SeqcliError(f"copy: {destination} already exists (the folder {relative} the recipe names); "
                                  f"move it away first")
        elif destination.parent.is_dir():
            destination = check_output(destination, "copy:", replace=force, inputs=(origin,))
        plan.append((origin, destination))
    written = []
    for origin, destination in plan:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, destination)
        else:
            write_atomic(destination, origin.read_bytes())
        written.append(destination)
    return written


def resolve(data: dict, origins: Origins) -> Recipe:
    problems: list[str] = rename_keys(data, origins)

    def report(path: str, message: str) -> None:
        problems.append(f"{origins.of(path)}: {path}: {message}")

    for key in data:
        if key not in SECTIONS:
            report(str(key), f"unknown section{did_you_mean(str(key), SECTIONS)}; sections are: {', '.join(SECTIONS)}")
    for key in REQUIRED:
        if key not in data:
            problems.append(f"{origins.source}: missing section '{key}'")
    description = data.get("description", "")
    if not isinstance(description, str):
        report("description", "must be a string")

    folding = None
    if isinstance(data.get("dataset"), dict) and {"folds", "fold"} & data["dataset"].keys():
        spec = {k: data["dataset"][k] for k in ("folds", "fold") if k in data["dataset"]}
        data = {**data, "dataset": {k: v for k, v in data["dataset"].items() if k not in ("folds", "fold")}}
        if "folds" not in spec:
            report("dataset.fold", "needs dataset.folds (how many folds the examples are dealt into)")
        folding = _options(spec, folds.folds, "dataset", report) if "folds" in spec else None
        if isinstance(folding, dict) and "folds" in folding and folds.check(folding):
            report("dataset.fold", folds.check(folding).partition(": ")[2])
    dataset = _plugin(data, "dataset", "dataset", report, origins)
    if folding is not None and dataset is not None:
        import inspect

        own = [k for k in ("folds", "fold") if k in inspect.signature(dataset[1]).parameters]
        if own:
            report(f"dataset.{own[0]}", f"the {dataset[0].name} dataset has its own '{own[0]}' option, and "
                                        f"dataset.folds and dataset.fold are seqcli's cross-validation keys; the "
                                        f"dataset's option cannot be given in a recipe until its plugin renames it")
    task = _plugin(data, "task", "task", report, origins)
    task_cls = task[1] if task else None

    cell, model_keys, init, embeddings = None, {}, None, None
    model = data.get("model")
    if "model" in data and not isinstance(model, dict):
        report("model", "must be a mapping (with a 'cell' and the model's size)")
    elif isinstance(model, dict):
        if "cell" not in model:
            report("model", "missing key 'cell' (for example cell: {name: lstm})")
        else:
            cell = _plugin(model, "cell", "cell", report, origins, prefix="model.")
        if model.get("init") is not None:
            init = _named(model["init"], INITS, "model.init", report, takes=("model",))
        if model.get("embeddings") is not None:
            embeddings = _options(model["embeddings"], pretrained.embeddings, "model.embeddings", report,
                                  base=lambda k: origins.base(f"model.embeddings.{k}"))
        rest = {k: v for k, v in model.items() if k not in ("cell", "init", "embeddings")}
        if task_cls is not None:
            model_keys, errors = check_args(task_cls.build_model, rest, skip=("self", "data", "cell"),
                                            base=lambda k: origins.base(f"model.{k}"))
            for key, message in errors:
                report(f"model.{key}", message)

    train = data.get("train", {}) or {}
    if not isinstance(train, dict):
        report("train", "must be a mapping")
        train = {}
    values, errors = check_args(TrainConfig, train)
    for key, message in errors:
        report(f"train.{key}", message)
    if "max_epochs" in train and "max_steps" not in train:  # an epoch budget alone
        values["max_steps"] = None
    if not errors and values.get("max_steps") is None and values.get("max_epochs") is None:
        report("train.max_steps", "give train.max_steps or train.max_epochs (the run needs a budget)")
    if "optimizer" in values:
        values["optimizer"] = _named(values["optimizer"], OPTIMIZERS, "train.optimizer", report, default=DEFAULT_OPTIMIZER["name"],
                                     takes=("params",))
    chosen = values.get("optimizer") if isinstance(values.get("optimizer"), dict) else {}
    if values.get("ema") is not None and chosen.get("name") in AVERAGING:
        report("train.ema", f"the {chosen['name']} optimizer averages the weights itself; use one of the two")
    if values.get("scheduler") is not None:
        values["scheduler"] = _named(values["scheduler"], SCHEDULERS, "train.scheduler", report,
                                     takes=("optimizer", "total_steps"))
    if values.get("mlflow") is not None:
        from seqcli.tracking import MLflow

        values["mlflow"] = _options(values["mlflow"], MLflow, "train.mlflow", report)
        if isinstance(values["mlflow"], dict) and isinstance(values["mlflow"].get("tracking_uri"), str):
            from seqcli.tracking import redact  # credentials are never written: recipe.yaml, checkpoints, cards

            values["mlflow"]["tracking_uri"] = redact(values["mlflow"]["tracking_uri"])
    if "device" in values:
        _check_device(values["device"], report)
    config = TrainConfig(**values) if not errors else None

    sample_keys = {}
    sample = data.get("sample", {}) or {}
    if not isinstance(sample, dict):
        report("sample", "must be a mapping")
    elif task_cls is not None:
        sample_keys, errors = check_args(task_cls.sample, sample, base=lambda k: origins.base(f"sample.{k}"),
                                         params=method_parameters(task_cls, "sample", ("self", "model", "fields")))
        for key, message in errors:
            report(f"sample.{key}", message)
        if not errors and task is not None and task[2]:
            try:
                construct(task_cls, task[0].options).check_sample(**sample_keys)
            except ConfigError as exc:
                report(f"sample.{exc.key}", exc.message)

    if problems:
        raise RecipeError(problems)
    return Recipe(dataset=dataset[0], task=task[0], cell=cell[0], model=model_keys, train=config,
                  sample=sample_keys, init=init, embeddings=embeddings, folds=folding, description=description, source=origins.source)


def _plugin(section_holder: dict, key: str, kind: str, report, origins: Origins, prefix: str = ""):
    """Check `{name: ..., **options}` for a plugin: (Choice, class, constructed fine) or None."""
    path = prefix + key
    spec = section_holder.get(key)
    if key not in section_holder:
        return None
    if not isinstance(spec, dict):
        example = registry.names(kind)[0] if registry.names(kind) else "..."
        report(path, f"must be a mapping with a 'name', for example {key}: {{name: {example}}}")
        return None
    name = spec.get("name")
    if not isinstance(name, str):
        report(f"{path}.name" if "name" in spec else path,
               f"missing the {kind} 'name'; installed {kind}s: {', '.join(registry.names(kind))}")
        return None
    try:
        name = registry.qualify(kind, name, origins.package)  # recorded so it means one plugin, here and later
        cls = registry.load(kind, name)
    except PluginError as exc:
        report(f"{path}.name", str(exc))
        return None
    options = {k: v for k, v in spec.items() if k != "name"}
    skip = tuple(PROBE_SIZES) if kind == "cell" else ()
    values, errors = check_args(cls, options, skip=skip, base=lambda k: origins.base(f"{path}.{k}"))
    for k, message in errors:
        report(f"{path}.{k}", message)
    ok = not errors and _construct_check(cls, values, kind, path, report)
    return Choice(name, values), cls, ok


def _construct_check(cls, values: dict, kind: str, path: str, report) -> bool:
    """Run a plugin's (cheap) constructor so it can reject values with ConfigError; a cell is
    built with tiny sizes, since the real ones are the task's to choose."""
    try:
        construct(cls, {**PROBE_SIZES, **values} if kind == "cell" else values)
        return True
    except ConfigError as exc:
        report(f"{path}.{exc.key}", exc.message)
    except SeqcliError as exc:
        report(path, str(exc))
    except Exception as exc:  # a plugin constructor that breaks on valid-looking values
        report(path, f"the {kind} rejected these options: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return False


def _named(spec, table: dict, path: str, report, default: str | None = None, takes: tuple = ()) -> dict:
    """Check `{name: ..., **keys}` against the callable `table[name]`: its keyword arguments
    after the ones it `takes` (what it works on) are the keys. The callable is then called
    with None for those, so that it checks the keys that must agree with each other."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict) and "name" not in spec and default:
        spec = {"name": default, **spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        report(path, f"must be a mapping with a 'name' ({', '.join(table)})")
        return spec
    name = spec["name"]
    if name not in table:
        report(f"{path}.name", f"unknown '{name}'{did_you_mean(name, table)}; choose one of: {', '.join(table)}")
        return spec
    values, errors = check_args(table[name], {k: v for k, v in spec.items() if k != "name"}, skip=takes)
    for k, message in errors:
        report(f"{path}.{k}", message)
    if not errors:
        try:
            table[name](*[None] * len(takes), **values)
        except ConfigError as exc:
            report(f"{path}.{exc.key}", exc.message)
    return {"name": name, **values}


def _options(spec, fn, path: str, report, base=None) -> dict:
    """Check a mapping of options against the signature of `fn`."""
    if not isinstance(spec, dict):
        report(path, "must be a mapping of options (or null)")
        return spec
    values, errors = check_args(fn, spec, base=base)
    for k, message in errors:
        report(f"{path}.{k}", message)
    return values


def _check_device(device: str, report) -> None:
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", device):
        report("train.device", f"must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
