"""Plugin discovery through Python entry points.

Three groups, one per kind: `seqcli.cells`, `seqcli.tasks`, `seqcli.datasets`. The built-ins
are registered by seqcli's own `pyproject.toml` in the same groups, so every run takes the
path a third-party plugin takes:

    find (package metadata only, cheap) -> load on first use (imports the module)
    -> check the loaded object against the contract of its kind.

A plugin that fails any of these is reported with its package, version and entry point;
it breaks nothing that does not use it.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from dataclasses import dataclass, field

from seqcli.errors import PluginError, did_you_mean, one_of

GROUPS = {"cell": "seqcli.cells", "task": "seqcli.tasks", "dataset": "seqcli.datasets"}


@dataclass
class PluginInfo:
    """What the metadata says about one entry point, and what loading it gave."""

    kind: str
    name: str
    value: str  # "module:attr"
    package: str
    version: str
    also_claimed_by: list[str] = field(default_factory=list)
    loaded: object = None
    failure: str | None = None

    @property
    def where(self) -> str:
        return f"{self.package} {self.version}, entry point '{self.name} = {self.value}' in group {GROUPS[self.kind]}"


_found: dict[str, dict[str, PluginInfo]] = {}


def third_party_disabled() -> bool:
    """SEQCLI_NO_PLUGINS=1 (or `seqcli --no-plugins`): only seqcli's own plugins are found."""
    return os.environ.get("SEQCLI_NO_PLUGINS", "") not in ("", "0")


def find(kind: str) -> dict[str, PluginInfo]:
    """Every plugin of `kind`, by name, from installed package metadata. Imports nothing."""
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}")
    if kind not in _found:
        plugins: dict[str, PluginInfo] = {}
        seen = set()
        own_only = third_party_disabled()
        for ep in md.entry_points(group=GROUPS[kind]):
            dist = getattr(ep, "dist", None)
            package = dist.name if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            if own_only and package != "seqcli":
                continue
            if (ep.name, ep.value, package) in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add((ep.name, ep.value, package))
            info = PluginInfo(kind, ep.name, ep.value, package, version)
            if ep.name in plugins:
                plugins[ep.name].also_claimed_by.append(f"{package} {version} ({ep.value})")
            else:
                plugins[ep.name] = info
        _found[kind] = plugins
    return _found[kind]


def forget() -> None:
    """Drop what was found, so the next lookup reads the metadata again (tests, new installs)."""
    _found.clear()


def names(kind: str) -> list[str]:
    return sorted(find(kind))


def info(kind: str, name: str) -> PluginInfo:
    plugins = find(kind)
    if name not in plugins:
        if not plugins:
            raise PluginError(f"no {kind} plugins are installed (is seqcli installed with pip?)")
        raise PluginError(
            f"unknown {kind} '{name}'{did_you_mean(name, plugins)}; installed {kind}s: {one_of(plugins)}"
        )
    return plugins[name]


def load(kind: str, name: str):
    """The class registered as `name`, imported on first use and checked against its contract."""
    plugin = info(kind, name)
    if plugin.also_claimed_by:
        claims = "; ".join([f"{plugin.package} {plugin.version} ({plugin.value})"] + plugin.also_claimed_by)
        raise PluginError(f"{kind} '{name}' is registered by more than one package: {claims}; uninstall one")
    if plugin.loaded is None and plugin.failure is None:
        try:
            module_name, _, attr = plugin.value.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
            problem = _contract_problem(kind, obj)
            if problem:
                raise TypeError(problem)
            plugin.loaded = obj
        except Exception as exc:  # a broken plugin must never take the CLI down with it
            plugin.failure = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    if plugin.failure is not None:
        raise PluginError(f"{kind} '{name}' failed to load ({plugin.where}): {plugin.failure}")
    return plugin.loaded


def _contract_problem(kind: str, obj) -> str | None:
    from seqcli import api

    base = {"cell": api.Cell, "task": api.Task, "dataset": api.Dataset}[kind]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return f"{obj!r} is not a subclass of seqcli.api.{base.__name__}"
    return None


def all_plugins(load_them: bool = True) -> list[PluginInfo]:
    """Every plugin of every kind; with `load_them`, each is imported and its status recorded."""
    rows = []
    for kind in GROUPS:
        for name, plugin in sorted(find(kind).items()):
            if load_them and not plugin.also_claimed_by:
                try:
                    load(kind, name)
                except PluginError:
                    pass
            rows.append(plugin)
    return rows
