"""From a checked recipe to its dataset, task and model: the one place that constructs plugins.

`packages` (kind -> package name) pins each plugin to the package a checkpoint recorded.
"""

from __future__ import annotations

from seqcli import registry
from seqcli.api import CellSpec, Data, Dataset, Task
from seqcli.nn import pretrained
from seqcli.nn.init import initialise
from seqcli.errors import ConfigError
from seqcli.recipe.resolve import Recipe
from seqcli.schema import construct


def plugin_class(kind: str, recipe: Recipe, packages: dict | None = None):
    choice = getattr(recipe, kind)
    return registry.load(kind, choice.name, (packages or {}).get(kind))


def dataset(recipe: Recipe, packages: dict | None = None) -> Dataset:
    return construct(plugin_class("dataset", recipe, packages), recipe.dataset.options)


def data(recipe: Recipe, packages: dict | None = None, fields: dict | None = None) -> Data:
    """The recipe's data: its dataset's splits and fields (encoded with `fields` when given and
    the dataset can), dealt into the recipe's fold (`dataset.folds`, `dataset.fold`)."""
    from seqcli.data import folds

    source = dataset(recipe, packages)
    loaded = source.load() if fields is None else source.load_with(fields)
    if loaded is NotImplemented:
        loaded = source.load()
    if recipe.folds and recipe.folds.get("fold") is not None:
        loaded = folds.deal(loaded, recipe.folds["folds"], recipe.folds["fold"], recipe.dataset.name)
    return loaded


def data_files(recipe: Recipe, packages: dict | None = None) -> dict[str, str]:
    """The data files a recipe names: its dataset's File options that are set (key -> path)."""
    import typing

    from seqcli.schema import File, parameters

    files = {}
    for key, (hint, _) in parameters(plugin_class("dataset", recipe, packages)).items():
        value = recipe.dataset.options.get(key)
        marks = [m for a in [hint, *typing.get_args(hint)] if typing.get_origin(a) is typing.Annotated
                 for m in typing.get_args(a)[1:]]
        if value is not None and any(type(m) is File for m in marks):
            files[key] = value
    return files


def data_digest(recipe: Recipe, packages: dict | None = None) -> str | None:
    """A SHA-256 over the data files a recipe names, or None when it names none: what a
    resumed run checks before it keeps its own vocabularies."""
    import hashlib

    from seqcli.files import sha256_of

    files = [f"{key}={sha256_of(path)}" for key, path in data_files(recipe, packages).items()]
    return hashlib.sha256("\n".join(files).encode()).hexdigest() if files else None


def check_stored_data(recipe: Recipe, packages: dict | None = None) -> None:
    """A stored recipe (a run's, a checkpoint's) names data files that may have gone or
    changed kind since: each is checked again (a regular, readable, non-empty file), so a
    path that is now a folder, a FIFO or a device is one line, never a hang."""
    from seqcli.errors import DataError
    from seqcli.schema import check_args

    _, problems = check_args(plugin_class("dataset", recipe, packages), recipe.dataset.options)
    if problems:
        key, message = problems[0]
        raise DataError(f"the run's dataset cannot be read again: dataset.{key}: {message}")


def task(recipe: Recipe, packages: dict | None = None) -> Task:
    return construct(plugin_class("task", recipe, packages), recipe.task.options)


def model(task_: Task, data: Data, recipe: Recipe, packages: dict | None = None):
    cell = CellSpec(plugin_class("cell", recipe, packages), dict(recipe.cell.options))
    try:
        built = construct(task_.build_model, {"data": data, "cell": cell, **recipe.model})
    except ConfigError as exc:  # a cell's check of its options, raised with the task's sizes
        if exc.key in recipe.cell.options:
            raise ConfigError(f"model.cell.{exc.key}", exc.message) from None
        raise ConfigError(f"model.{exc.key}" if exc.key in recipe.model else exc.key, exc.message) from None
    try:
        initialise(built, recipe.init)
    except ConfigError as exc:
        raise ConfigError(f"model.init.{exc.key}", exc.message) from None
    pretrained.freeze(built, recipe.embeddings)  # the vectors themselves: runs.train, in a new run
    return built
