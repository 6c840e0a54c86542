"""From a checked recipe, or from a checkpoint alone, to a task, its data and its model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqcli import registry
from seqcli.api import CellSpec, Data, Dataset, Task
from seqcli.data.vocab import field_from_state
from seqcli.errors import CheckpointError, PluginError
from seqcli.recipe.resolve import Recipe
from seqcli.train import checkpoint


def options(section: dict) -> dict:
    return {k: v for k, v in section.items() if k != "name"}


def dataset(recipe_data: dict) -> Dataset:
    spec = recipe_data["dataset"]
    return registry.load("dataset", spec["name"])(**options(spec))


def task(recipe_data: dict) -> Task:
    spec = recipe_data["task"]
    return registry.load("task", spec["name"])(**options(spec))


def model(task_: Task, data: Data, recipe_data: dict):
    spec = dict(recipe_data["model"])
    cell = spec.pop("cell")
    cell_spec = CellSpec(registry.load("cell", cell["name"]), options(cell))
    return task_.build_model(data, cell_spec, **spec)


def plugin_versions(recipe_data: dict) -> dict:
    """Which package (and version) provided each plugin the recipe uses."""
    used = {"dataset": recipe_data["dataset"]["name"], "task": recipe_data["task"]["name"],
            "cell": recipe_data["model"]["cell"]["name"]}
    out = {}
    for kind, name in used.items():
        info = registry.info(kind, name)
        out[kind] = {"name": name, "package": info.package, "version": info.version}
    return out


def fields_to_state(fields: dict) -> dict:
    return {k: v.to_state() if hasattr(v, "to_state") else v for k, v in fields.items()}


def fields_from_state(state: dict) -> dict:
    return {k: field_from_state(v) for k, v in state.items()}


@dataclass
class Loaded:
    """Everything a checkpoint rebuilds: no recipe file and no data needed."""

    checkpoint: dict
    recipe: Recipe
    task: Task
    model: Any
    fields: dict


def from_checkpoint(path, which: str = "best", device: str = "cpu") -> Loaded:
    ckpt = checkpoint.load(path, which)
    recipe = Recipe(ckpt["recipe"], ckpt["path"])
    for kind, used in ckpt.get("plugins", {}).items():
        try:
            registry.load(kind, used["name"])
        except PluginError as exc:
            raise CheckpointError(
                f"{ckpt['path']}: built with {kind} '{used['name']}' from package {used['package']} "
                f"{used['version']}, which is not usable here ({exc}); install that package"
            ) from None
    fields = fields_from_state(ckpt["fields"])
    task_ = task(recipe.data)
    model_ = model(task_, Data(splits={}, fields=fields, info=ckpt.get("data_info", {})), recipe.data)
    try:
        model_.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt['path']}: weights do not fit the model its recipe describes "
                              f"({str(exc).splitlines()[0]})") from None
    from seqcli.train.trainer import pick_device

    model_.to(pick_device(device)).eval()
    return Loaded(ckpt, recipe, task_, model_, fields)
