"""From a checked recipe to its dataset, task and model: the one place that constructs plugins.

`packages` (kind -> package name) pins each plugin to the package a checkpoint recorded.
"""

from __future__ import annotations

from seqcli import registry
from seqcli.api import CellSpec, Data, Dataset, Task
from seqcli.cells.init import initialise
from seqcli.errors import ConfigError
from seqcli.recipe.resolve import Recipe
from seqcli.schema import construct


def plugin_class(kind: str, recipe: Recipe, packages: dict | None = None):
    choice = getattr(recipe, kind)
    return registry.load(kind, choice.name, (packages or {}).get(kind))


def dataset(recipe: Recipe, packages: dict | None = None) -> Dataset:
    return construct(plugin_class("dataset", recipe, packages), recipe.dataset.options)


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
    return built


def plugin_versions(recipe: Recipe, packages: dict | None = None) -> dict:
    """Which package (and version) provided each plugin the recipe uses."""
    from seqcli.train.checkpoint import PluginRecord

    out = {}
    for kind in ("dataset", "task", "cell"):
        info = registry.info(kind, getattr(recipe, kind).name, (packages or {}).get(kind))
        out[kind] = PluginRecord(info.name, info.package, info.version)
    return out
