"""Read a recipe: YAML with the line of every key, then `key=value` overrides on top."""

from __future__ import annotations

from pathlib import Path

import yaml

from seqcli.errors import RecipeError


class Origins:
    """Where each dotted key came from: 'recipe.yaml:7' or "override 'train.max_steps=5'"."""

    def __init__(self, source: str, package: str | None = None):
        self.source = source
        self.package = package  # the plugin package that ships this recipe, if one does
        self.places: dict[str, str] = {}

    def base(self, path: str) -> str:
        """The folder a relative path at `path` starts from: the recipe file's own folder for
        keys written in the file, the current folder for overrides on the command line."""
        import os

        if self.of(path).startswith("override "):
            return os.getcwd()
        return os.path.dirname(os.path.abspath(self.source))

    def of(self, path: str) -> str:
        """The place of `path`, or of its nearest parent section that has one."""
        while path:
            if path in self.places:
                return self.places[path]
            path = path.rpartition(".")[0]
        return self.source


def bundled_dir() -> Path:
    """Where the bundled recipes are: inside the installed package, or `recipes/` in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "recipes", here.parent / "recipes"):
        if candidate.is_dir():
            return candidate
    return here / "recipes"


def bundled() -> dict[str, Path]:
    """seqcli's own recipes, by name."""
    return {p.stem: p for p in sorted(bundled_dir().glob("*.yaml"))}


def available() -> dict[str, tuple[Path, str]]:
    """Every recipe a name can run: seqcli's own, then those plugin packages ship (entry-point
    group `seqcli.recipes`), each as `package:name` and, where seqcli has none of that name
    and no other package claims it, as `name` alone. Values: (file, package)."""
    from seqcli import registry

    out = {name: (path, "seqcli") for name, path in bundled().items()}
    plain: dict[str, list[tuple[Path, str]]] = {}
    for package, _version, folder in registry.recipe_folders():
        for path in sorted(Path(str(folder)).glob("*.yaml")):
            out[f"{package}:{path.stem}"] = (path, package)
            plain.setdefault(path.stem, []).append((path, package))
    for name, claims in plain.items():
        if name not in out and len(claims) == 1:
            out[name] = claims[0]
    return out


def package_of(path: Path) -> str | None:
    """The plugin package whose recipe folder holds `path`, or None (seqcli's own recipes,
    and the user's files)."""
    from seqcli import registry

    here = Path(path).resolve()
    for package, _version, folder in registry.recipe_folders():
        if here.parent == Path(str(folder)).resolve():
            return package
    return None


def locate(name_or_path: str) -> Path:
    """A recipe file: a path that exists, or the name of a bundled or plugin recipe."""
    from seqcli.errors import SeqcliError, did_you_mean

    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.exists():
        raise SeqcliError(f"{name_or_path}: is not a file")
    recipes = available()
    if name_or_path in recipes:
        return recipes[name_or_path][0]
    hint = did_you_mean(name_or_path, recipes)
    raise SeqcliError(
        f"{name_or_path}: no such file, and no bundled recipe of that name{hint}; "
        f"recipes: {', '.join(n for n in recipes if ':' not in n or n.partition(':')[2] not in recipes) or 'none'}"
    )


#: bounds on what a recipe may expand to: aliases can make a few bytes stand for millions of
#: values (a "billion laughs"), and deep nesting exhausts the parser's stack
MAX_BYTES = 1 << 20
MAX_VALUES = 20_000
MAX_DEPTH = 40
#: the longest integer read (digits): Python refuses to read one of more than 4,300 anyway
MAX_DIGITS = 100


def parse_yaml(text: str, where: str, lines: bool = True):
    """(node, data) of one YAML document, refusing alias bombs, recursive aliases and deep
    nesting before anything is built from them. Problems are RecipeError lines naming
    `where` (a file, then `:LINE` when `lines`)."""
    def at(mark) -> str:
        return f"{where}:{mark.line + 1}" if lines and mark is not None else where

    if len(text) > MAX_BYTES:
        raise RecipeError([f"{where}: {len(text):,} characters; a recipe is at most {MAX_BYTES:,}"])
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # its reader already refuses control characters
        node = loader.get_single_node()
        if node is None:
            return None, None
        check_expansion(node, at)
        return node, loader.construct_document(node)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise RecipeError([f"{at(getattr(exc, 'problem_mark', None))}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise RecipeError([f"{where}: the YAML is nested too deeply (more than {MAX_DEPTH} levels)"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def check_expansion(root, at) -> None:
    """Count the values `root` stands for once every alias is expanded, without expanding."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        line = at(node.start_mark)
        if key in open_nodes:
            raise RecipeError([f"{line}: a recursive alias (a value that contains itself)"])
        if depth > MAX_DEPTH:
            raise RecipeError([f"{line}: the YAML is nested too deeply (more than {MAX_DEPTH} levels)"])
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v, depth + 1) for v in node.value)
        else:
            total = 1
            digits = sum(c.isalnum() for c in node.value) if node.tag.endswith(":int") else 0
            if digits > MAX_DIGITS:
                raise RecipeError([f"{line}: an integer of {digits:,} digits; numbers here have at most "
                                   f"{MAX_DIGITS}"])
        open_nodes.discard(key)
        if total > MAX_VALUES:
            raise RecipeError([f"{line}: the YAML expands to more than {MAX_VALUES:,} values (through aliases?); "
                               f"a recipe is far smaller"])
        sizes[key] = total
        return total

    size(root, 0)


def read(path: Path) -> tuple[dict, Origins]:
    """Parse a recipe file; every key's line goes into Origins. YAML errors name file:line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError([f"{name}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise RecipeError([f"{name}: cannot read ({exc.strerror})"]) from None
    origins = Origins(name, package_of(path))
    node, data = parse_yaml(text, name)
    if data is None:
        raise RecipeError([f"{name}: the recipe is empty"])
    if not isinstance(data, dict):
        raise RecipeError([f"{name}:1: a recipe must be a mapping of sections (dataset, task, model, ...)"])
    problems: list[str] = []
    _record_lines(node, "", origins, name, problems)
    if problems:
        raise RecipeError(problems)
    return data, origins


def _record_lines(node, prefix: str, origins: Origins, name: str, problems: list[str]) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value)
        path = f"{prefix}.{key}" if prefix else key
        line = key_node.start_mark.line + 1
        if key in seen:
            problems.append(f"{name}:{line}: {path}: duplicate key")
        seen.add(key)
        origins.places[path] = f"{name}:{line}"
        _record_lines(value_node, path, origins, name, problems)


def apply_overrides(data: dict, origins: Origins, overrides: list[str]) -> None:
    """Set `dotted.key=value` pairs; values are read as YAML (`5` is an int, `[1, 2]` a list)."""
    problems = []
    for item in overrides:
        key, eq, raw = item.partition("=")
        key = key.strip()
        where = f"override '{item}'"
        if not eq or not key or any(not part for part in key.split(".")):
            problems.append(f"{where}: expected key=value, for example train.max_steps=100")
            continue
        try:
            value = parse_yaml(raw, where, lines=False)[1] if raw.strip() else ""
        except RecipeError as exc:
            problems.append(exc.problems[0].replace(f"{where}: invalid YAML: ", f"{where}: the value is not valid YAML: "))
            continue
        *parents, last = key.split(".")
        target = data
        for i, part in enumerate(parents):
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                section = ".".join(parents[: i + 1])
                problems.append(f"{where}: cannot set '{key}': '{section}' is not a mapping")
                break
            target = child
        else:
            target[last] = value
            origins.places[key] = where
            _mark_children(value, key, where, origins)
    if problems:
        raise RecipeError(problems)


def _mark_children(value, prefix: str, where: str, origins: Origins) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            origins.places[f"{prefix}.{k}"] = where
            _mark_children(v, f"{prefix}.{k}", where, origins)
