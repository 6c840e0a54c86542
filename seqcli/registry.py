"""Plugin discovery through Python entry points.

Four groups: `seqcli.cells`, `seqcli.tasks`, `seqcli.datasets` (classes) and `seqcli.recipes`
(folders of YAML recipes). The built-ins are registered by seqcli's own `pyproject.toml` in
the same groups, so every run takes the path a third-party plugin takes:

    find (package metadata only, cheap) -> load on first use (imports the module)
    -> check the loaded object against the contract of its kind and the API version.

Names: every plugin can be named `package:name` (`seqcli:lstm`, `seqcli-extras:lstm`). A plain
name means seqcli's own plugin where seqcli has one, so installing a package never changes
what an existing recipe or checkpoint means; otherwise the one package that registers it;
two third-party packages registering one name must be told apart by the qualified name. In a
recipe a package ships, a plain name means that package's own plugin first. A checked
recipe records the qualified name wherever a plain one is ambiguous (`qualify`).

A plugin that fails any step, even by calling sys.exit() while importing, is reported with
its package, version and entry point; it breaks nothing that does not use it.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
from dataclasses import dataclass

from seqcli.errors import PluginError, did_you_mean, one_of

GROUPS = {"cell": "seqcli.cells", "task": "seqcli.tasks", "dataset": "seqcli.datasets"}
RECIPES = "seqcli.recipes"
OWN = "seqcli"


@dataclass
class PluginInfo:
    """What the metadata says about one entry point, and what loading it gave."""

    kind: str
    name: str
    value: str  # "module:attr"
    package: str
    version: str
    loaded: object = None
    failure: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.package}:{self.name}"

    @property
    def where(self) -> str:
        return f"{self.package} {self.version}, entry point '{self.name} = {self.value}' in group {GROUPS[self.kind]}"


_found: dict[str, dict[str, list[PluginInfo]]] = {}


def normalize(package: str) -> str:
    """A distribution name as pip compares them: case, '-', '_' and '.' do not matter."""
    return re.sub(r"[-_.]+", "-", package).lower()


def third_party_disabled() -> bool:
    """SEQCLI_NO_PLUGINS=1 (or `seqcli --no-plugins`): only seqcli's own plugins are found."""
    return os.environ.get("SEQCLI_NO_PLUGINS", "") not in ("", "0")


def disabled_packages() -> set[str]:
    """SEQCLI_DISABLE_PLUGINS=pkg1,pkg2 (or `seqcli --disable-plugin PKG`): these packages'
    plugins and recipes are not found."""
    return {normalize(p) for p in re.split(r"[,\s]+", os.environ.get("SEQCLI_DISABLE_PLUGINS", "")) if p}


def _entry_points(group: str):
    """(entry point, package, version) of a group, without seqcli's own when they are
    switched off, nor a disabled package, nor a distribution seen twice on sys.path."""
    own_only, off, seen = third_party_disabled(), disabled_packages(), set()
    for ep in md.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        package = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        if package != OWN and (own_only or normalize(package) in off):
            continue
        if (ep.name, ep.value, normalize(package)) in seen:
            continue
        seen.add((ep.name, ep.value, normalize(package)))
        yield ep, package, version


def find(kind: str) -> dict[str, list[PluginInfo]]:
    """Every plugin of `kind`, by name (seqcli's own first), from package metadata. Imports nothing."""
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}")
    if kind not in _found:
        plugins: dict[str, list[PluginInfo]] = {}
        for ep, package, version in _entry_points(GROUPS[kind]):
            plugins.setdefault(ep.name, []).append(PluginInfo(kind, ep.name, ep.value, package, version))
        for claims in plugins.values():
            claims.sort(key=lambda p: (p.package != OWN, normalize(p.package)))
        _found[kind] = plugins
    return _found[kind]


def forget() -> None:
    """Drop what was found, so the next lookup reads the metadata again (tests, new installs)."""
    _found.clear()


def names(kind: str) -> list[str]:
    return sorted(find(kind))


def info(kind: str, name: str, package: str | None = None) -> PluginInfo:
    """The plugin a name means: `package:name` or `name` (see the module's docstring).
    `package` asks for that package's plugin of the name (what a checkpoint recorded)."""
    if ":" in name:
        package, _, name = name.partition(":")
    plugins = find(kind)
    claims = plugins.get(name, [])
    if package is not None:
        mine = [p for p in claims if normalize(p.package) == normalize(package)]
        if mine:
            return mine[0]
        if claims:
            others = ", ".join(p.qualified for p in claims)
            raise PluginError(f"{kind} '{package}:{name}': package {package} does not provide it here "
                              f"(installed: {others}){_off_hint(package)}")
        raise PluginError(f"{kind} '{package}:{name}' is not installed{_off_hint(package)}; "
                          f"install the package {package}")
    if not claims:
        if not plugins:
            raise PluginError(f"no {kind} plugins are installed (is seqcli installed with pip?)")
        raise PluginError(f"unknown {kind} '{name}'{did_you_mean(name, plugins)}; installed {kind}s: {one_of(plugins)}")
    if claims[0].package == OWN or len(claims) == 1:
        return claims[0]
    both = ", ".join(f"'{p.qualified}' ({p.package} {p.version})" for p in claims)
    raise PluginError(f"{kind} '{name}' is registered by more than one package; name one of: {both}")


def qualify(kind: str, name: str, prefer: str | None = None) -> str:
    """The name a recipe records for `name`: unchanged where one package registers it; where
    several do, the qualified name (`package:name`) of `prefer`'s own plugin (the package that
    shipped the recipe), else of seqcli's own; else unchanged (and `info` says to choose)."""
    claims = find(kind).get(name, []) if ":" not in name else []
    if len(claims) < 2:
        return name
    if prefer is not None:
        for claim in claims:
            if normalize(claim.package) == normalize(prefer):
                return claim.qualified
    return claims[0].qualified if claims[0].package == OWN else name


def _off_hint(package: str) -> str:
    if normalize(package) != OWN and third_party_disabled():
        return " (third-party plugins are switched off: --no-plugins / SEQCLI_NO_PLUGINS)"
    if normalize(package) in disabled_packages():
        return " (the package is switched off: --disable-plugin / SEQCLI_DISABLE_PLUGINS)"
    return ""


def load(kind: str, name: str, package: str | None = None):
    """The class a name means, imported on first use and checked against its contract."""
    return load_info(info(kind, name, package))


def load_info(plugin: PluginInfo):
    if plugin.loaded is None and plugin.failure is None:
        try:
            module_name, _, attr = plugin.value.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
            problem = _contract_problem(plugin.kind, obj)
            if problem:
                raise TypeError(problem)
            plugin.loaded = obj
        except KeyboardInterrupt:
            raise
        except SystemExit as exc:  # a plugin must not end seqcli while it is imported
            plugin.failure = f"called sys.exit({exc.code!r}) while being imported"
        except BaseException as exc:  # a broken plugin must never take the CLI down with it
            text = str(exc).strip().splitlines()
            plugin.failure = f"{type(exc).__name__}: {text[0] if text else ''}".strip()
    if plugin.failure is not None:
        raise PluginError(f"{plugin.kind} '{plugin.name}' failed to load ({plugin.where}): {plugin.failure}")
    return plugin.loaded


def _contract_problem(kind: str, obj) -> str | None:
    from seqcli import api

    base = {"cell": api.Cell, "task": api.Task, "dataset": api.Dataset}[kind]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return f"{obj!r} is not a subclass of seqcli.api.{base.__name__}"
    return version_problem(getattr(obj, "api_version", None))


def version_problem(stated) -> str | None:
    """Why a plugin stating `api_version = stated` cannot run on this seqcli, or None."""
    from seqcli.api import API_VERSION

    if stated is None:
        return None
    major, minor = (int(x) for x in API_VERSION.split("."))
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?", str(stated).strip())
    if not match or isinstance(stated, bool):
        return f"api_version {stated!r} is not a version like '{API_VERSION}'"
    want_major, want_minor = int(match.group(1)), int(match.group(2) or 0)
    if want_major != major:
        return (f"written for seqcli plugin API {want_major}.x; this seqcli provides {API_VERSION} "
                f"(install a version of the plugin made for API {major}, or a seqcli for API {want_major})")
    if want_minor > minor:
        return f"needs seqcli plugin API {stated}; this seqcli provides {API_VERSION} (upgrade seqcli)"
    return None


def all_plugins(load_them: bool = True) -> list[PluginInfo]:
    """Every plugin of every kind; with `load_them`, each is imported and its status recorded."""
    rows = []
    for kind in GROUPS:
        for name, claims in sorted(find(kind).items()):
            for plugin in claims:
                if load_them:
                    try:
                        load_info(plugin)
                    except PluginError:
                        pass
                rows.append(plugin)
    return rows


def status(plugin: PluginInfo) -> str:
    """'ok', 'found' (not imported), 'failed: why', or how a name shared by packages resolves."""
    if plugin.failure is not None:
        return f"failed: {plugin.failure}"
    claims = find(plugin.kind).get(plugin.name, [plugin])
    base = "ok" if plugin.loaded is not None else "found"
    if len(claims) > 1:
        if claims[0].package == OWN:
            if plugin.package == OWN:
                return f"{base}; '{plugin.name}' means this one (also registered by: " \
                       f"{', '.join(p.qualified for p in claims[1:])})"
            return f"{base}; shadowed by seqcli's own '{plugin.name}': name it '{plugin.qualified}'"
        return f"{base}; clash: '{plugin.name}' is registered by {len(claims)} packages: name it '{plugin.qualified}'"
    return base


# -- recipes shipped by plugin packages ---------------------------------------------------------

def recipe_folders() -> list[tuple[str, str, object]]:
    """(package, version, folder) for each `seqcli.recipes` entry point that names a package
    folder; one that does not is skipped (`plugins list` reports it). The folder is found
    from the import system's search path alone: no plugin code runs to list recipes."""
    import importlib.util
    from pathlib import Path

    out = []
    for ep, package, version in _entry_points(RECIPES):
        top, *rest = ep.value.partition(":")[0].strip().split(".")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        for base in (spec.submodule_search_locations or []) if spec is not None else []:
            folder = Path(base, *rest)
            if folder.is_dir():
                out.append((package, version, folder))
                break
    return out
