"""Check a whole recipe and resolve it to plain data with every default filled in.

Every problem is collected, each as `file:line: key: what is wrong`, and reported together
before any data is read or any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
import yaml

from seqcli import registry
from seqcli.errors import ConfigError, PluginError, RecipeError, SeqcliError, did_you_mean
from seqcli.recipe.load import Origins, apply_overrides, locate, read
from seqcli.recipe.schema import check_args
from seqcli.train.config import TrainConfig
from seqcli.train.optim import OPTIMIZERS, SCHEDULERS

SECTIONS = ("description", "dataset", "task", "model", "train", "sample")
REQUIRED = ("dataset", "task", "model")


@dataclass
class Recipe:
    """A checked recipe: plain data, every default filled in."""

    data: dict
    source: str

    @property
    def description(self) -> str:
        return self.data.get("description", "")

    def section(self, name: str) -> dict:
        return self.data[name]

    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.data["train"])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True)


def load_recipe(name_or_path: str, overrides: list[str] = ()) -> Recipe:
    """Read, override and check a recipe (a file path or a bundled recipe's name)."""
    path = locate(name_or_path)
    data, origins = read(path)
    apply_overrides(data, origins, list(overrides))
    return resolve(data, origins)


def resolve(data: dict, origins: Origins) -> Recipe:
    problems: list[str] = []

    def report(path: str, message: str) -> None:
        problems.append(f"{origins.of(path)}: {path}: {message}")

    for key in data:
        if key not in SECTIONS:
            report(str(key), f"unknown section{did_you_mean(str(key), SECTIONS)}; sections are: {', '.join(SECTIONS)}")
    for key in REQUIRED:
        if key not in data:
            problems.append(f"{origins.source}: missing section '{key}'")
    out: dict = {}
    if "description" in data:
        if not isinstance(data["description"], str):
            report("description", "must be a string")
        out["description"] = str(data["description"])

    _plugin(data, "dataset", "dataset", report, out, skip=())
    task_cls = _plugin(data, "task", "task", report, out, skip=())

    model = data.get("model")
    if "model" in data and not isinstance(model, dict):
        report("model", "must be a mapping (with a 'cell' and the model's size)")
    elif isinstance(model, dict):
        out["model"] = {}
        if "cell" not in model:
            report("model", "missing key 'cell' (for example cell: {name: lstm})")
        else:
            _plugin(model, "cell", "cell", report, out["model"], skip=("input_size", "hidden_size"), prefix="model.")
        rest = {k: v for k, v in model.items() if k != "cell"}
        if task_cls is not None:
            values, errors = check_args(task_cls.build_model, rest, skip=("self", "data", "cell"))
            for key, message in errors:
                report(f"model.{key}", message)
            out["model"].update(values)

    train = data.get("train", {}) or {}
    if not isinstance(train, dict):
        report("train", "must be a mapping")
        train = {}
    values, errors = check_args(TrainConfig, train)
    for key, message in errors:
        report(f"train.{key}", message)
    if "optimizer" in values:
        values["optimizer"] = _named(values["optimizer"], OPTIMIZERS, "train.optimizer", report, default="adam")
    if values.get("scheduler") is not None:
        values["scheduler"] = _named(values["scheduler"], SCHEDULERS, "train.scheduler", report)
    if "device" in values:
        _check_device(values["device"], report)
    out["train"] = values

    sample = data.get("sample", {}) or {}
    if not isinstance(sample, dict):
        report("sample", "must be a mapping")
    elif task_cls is not None:
        values, errors = check_args(task_cls.sample, sample, skip=("self", "model", "fields"))
        for key, message in errors:
            report(f"sample.{key}", message)
        if not errors and "task" in out:
            try:
                task_cls(**{k: v for k, v in out["task"].items() if k != "name"}).check_sample(**values)
            except ConfigError as exc:
                report(f"sample.{exc.key}", exc.message)
        out["sample"] = values

    if problems:
        raise RecipeError(problems)
    return Recipe(out, origins.source)


def _plugin(section_holder: dict, key: str, kind: str, report, out: dict, skip, prefix: str = ""):
    """Check `{name: ..., **options}` for a plugin; returns its class (or None) and puts the
    resolved options in out[key]."""
    path = prefix + key
    spec = section_holder.get(key)
    if key not in section_holder:
        return None
    if not isinstance(spec, dict):
        report(path, f"must be a mapping with a 'name', for example {key}: {{name: {registry.names(kind)[0] if registry.names(kind) else '...'}}}")
        return None
    name = spec.get("name")
    if not isinstance(name, str):
        report(f"{path}.name" if "name" in spec else path,
               f"missing the {kind} 'name'; installed {kind}s: {', '.join(registry.names(kind))}")
        return None
    try:
        cls = registry.load(kind, name)
    except PluginError as exc:
        report(f"{path}.name", str(exc))
        return None
    options = {k: v for k, v in spec.items() if k != "name"}
    values, errors = check_args(cls, options, skip=skip)
    for k, message in errors:
        report(f"{path}.{k}", message)
    out[key] = {"name": name, **values}
    if not errors and kind != "cell":  # a cell needs sizes the task picks: built later
        _construct_check(cls, out[key], path, report)
    return cls


def _construct_check(cls, resolved: dict, path: str, report) -> None:
    """Run a plugin's (cheap) constructor so it can reject values with ConfigError."""
    try:
        cls(**{k: v for k, v in resolved.items() if k != "name"})
    except ConfigError as exc:
        report(f"{path}.{exc.key}", exc.message)
    except SeqcliError as exc:
        report(path, str(exc))


def _named(spec, table: dict, path: str, report, default: str | None = None) -> dict:
    """Check `{name: ..., **options}` against the spec function `table[name]`."""
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
    values, errors = check_args(table[name], {k: v for k, v in spec.items() if k != "name"})
    for k, message in errors:
        report(f"{path}.{k}", message)
    return {"name": name, **values}


def _check_device(device: str, report) -> None:
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", device):
        report("train.device", f"must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
