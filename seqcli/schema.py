"""Check plain recipe values against a Python signature and its type hints.

A plugin's constructor (or any function or dataclass) is its schema: every keyword argument
is a recipe key, its type hint is the type the value must have, its default is the value a
missing key gets, and `Annotated[int, Range(1, 4096)]` bounds it. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import math
import pathlib
import re
import types
import typing
from typing import Annotated, Any, Literal, Union

from seqcli.errors import did_you_mean

#: a number in exponent notation without a decimal point (1e-4), which YAML 1.1 reads as a string
EXPONENT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


class Range:
    """Bounds for a number, used as `Annotated[float, Range(0, 1, hi_open=True)]`."""

    def __init__(self, lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def check(self, value) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        too_high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if too_low or too_high:
            return f"must be {self.describe()}, got {value}"
        return None

    def describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi}")
        return " and ".join(parts)


_check_existence = contextvars.ContextVar("check_existence", default=True)


@contextlib.contextmanager
def paths_unchecked():
    """Within this block, File and Folder values are made absolute but not looked for: a
    checkpoint's stored recipe is valid although the data it was trained on is gone."""
    token = _check_existence.set(False)
    try:
        yield
    finally:
        _check_existence.reset(token)


class File:
    """`Annotated[str, File()]` (or `Annotated[Path, File()]`): a path to a readable, non-empty
    regular file. A relative path in a recipe file is taken from the recipe file's folder, one
    given on the command line from the current folder; either way it is stored absolute, so a
    run directory's recipe still finds it from anywhere. FIFOs, devices and folders are refused."""

    what = "file"

    def apply(self, value, base: str | None = None):
        import os
        import stat

        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise Problem(f"must be a {self.what} path, got {value!r}")
        path = absolute(value, base)
        if not _check_existence.get():
            return path
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise Problem(f"{self.what} not found: {value}" + (f" (looked in {path})" if path != value else "")) from None
        except OSError as exc:
            raise Problem(f"cannot read {value}: {exc.strerror}") from None
        return self.check(path, value, info, stat)

    def check(self, path: str, value: str, info, stat) -> str:
        import os

        if not stat.S_ISREG(info.st_mode):
            raise Problem(f"not a regular file: {value}")
        if not os.access(path, os.R_OK):
            raise Problem(f"file is not readable: {value}")
        if info.st_size == 0:
            raise Problem(f"file is empty: {value}")
        return path

    def describe(self) -> str:
        return ""


class Folder(File):
    """`Annotated[str, Folder()]` (or `Annotated[Path, Folder()]`): an existing, readable
    folder; relative paths are resolved as for `File`."""

    what = "folder"

    def check(self, path: str, value: str, info, stat) -> str:
        import os

        if not stat.S_ISDIR(info.st_mode):
            raise Problem(f"not a folder: {value}")
        if not os.access(path, os.R_OK | os.X_OK):
            raise Problem(f"folder is not readable: {value}")
        return path


class Flag:
    """`Annotated[float, Range(0, 100), Flag("-t", greedy=0.0)]`: how a sample or evaluate
    option may also be spelled on the command line: a short flag (`-t 0.5`), and switches
    that set it to a value (`--greedy` is `--temperature 0`). The recipe key stays the name."""

    def __init__(self, short: str | None = None, **switches):
        if short is not None and not (len(short) == 2 and short[0] == "-" and short[1].isalpha()):
            raise ValueError(f"Flag: a short flag is '-' and one letter, got {short!r}")
        self.short, self.switches = short, switches


def flags(params: dict) -> dict[str, tuple[str, object]]:
    """The extra spellings the options in `params` declare: `-t` -> ("temperature", None),
    `--greedy` -> ("temperature", 0.0) (None: the value follows)."""
    found: dict = {}
    for name, (hint, _) in params.items():
        for arg in [hint, *typing.get_args(hint)]:
            if typing.get_origin(arg) is Annotated:
                for meta in typing.get_args(arg)[1:]:
                    if isinstance(meta, Flag):
                        if meta.short:
                            found[meta.short] = (name, None)
                        found.update({flag(k): (name, v) for k, v in meta.switches.items()})
    return found


class Output:
    """`Annotated[str | None, Output(".png")]`: a file a command writes (a sample option's
    picture). seqcli checks it before any work (the folder exists, the suffix fits, an
    existing file is replaced only with --force) and writes it; the task only learns that
    it was asked for."""

    def __init__(self, suffix: str):
        self.suffix = suffix

    def apply(self, value, base: str | None = None):
        if not isinstance(value, str) or not value:
            raise Problem(f"must be a {self.suffix} file name, got {value!r}")
        if not value.lower().endswith(self.suffix):
            raise Problem(f"must be a {self.suffix} file, got {value!r}")
        return absolute(value, base)

    def describe(self) -> str:
        return ""


def absolute(value: str, base: str | None = None) -> str:
    """`value` made absolute: `~` expanded, a relative path joined to `base` (or the current
    folder)."""
    import os

    path = os.path.expanduser(value)
    if not os.path.isabs(path) and base is not None:
        path = os.path.join(base, path)
    return os.path.abspath(path)


#: a random seed: bounded so that every generator it seeds (and seed * 1,000,003 + epoch) fits
Seed = Annotated[int, Range(0, 2**32 - 1)]


class Problem(Exception):
    """A value that does not fit its type; `message` says what was expected."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        for m in meta:
            if isinstance(m, File):
                return f"a {m.what} path"
            if isinstance(m, Output):
                return f"a {m.suffix} file to write"
        ranges = [m.describe() for m in meta if isinstance(m, Range)]
        return type_name(base) + (f" {ranges[0]}" if ranges and ranges[0] else "")
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if origin is tuple and len(args) > 1 and Ellipsis not in typing.get_args(hint):
            return f"a list of {len(args)} values ({', '.join(type_name(a) for a in args)})"
        return f"a list of {type_name(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if hint is type(None):
        return "null"
    if hint is pathlib.Path:
        return "a path"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def coerce(value, hint, base: str | None = None):
    """`value` checked against `hint` (ints become floats where a float is wanted), or Problem.
    Paths stay strings (recipes are plain data), made absolute against `base`."""
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(hint)
    if origin is Annotated:
        inner, *meta = typing.get_args(hint)
        if inner is pathlib.Path and any(isinstance(m, File) for m in meta):
            inner = str  # File/Folder check the path; the recipe keeps it as a string
        value = coerce(value, inner, base)
        for m in meta:
            if value is None:
                break
            if isinstance(m, Range):
                msg = m.check(value)
                if msg:
                    raise Problem(msg)
            elif isinstance(m, File | Output):
                value = m.apply(value, base)
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        last = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, base)
            except Problem as p:
                last = p
        # one non-null alternative: its own message is the most precise one
        if len([a for a in args if a is not type(None)]) == 1 and last is not None:
            raise last
        raise Problem(f"must be {type_name(hint)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(hint) and not isinstance(value, bool):
            return value
        raise Problem(f"must be {type_name(hint)}, got {value!r}{did_you_mean(str(value), map(str, typing.get_args(hint)))}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise Problem(f"must be {type_name(hint)}, got {value!r}")
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if origin is tuple and len(args) > 1 and Ellipsis not in typing.get_args(hint):  # a fixed length
            if len(value) != len(args):
                raise Problem(f"must be {type_name(hint)}, got {len(value)} value{'s' if len(value) != 1 else ''}")
            return [coerce(v, a, base) for v, a in zip(value, args)]
        return [coerce(v, args[0], base) for v in value] if args else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise Problem(f"must be a mapping, got {value!r}")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and EXPONENT.fullmatch(value.strip()):  # YAML 1.1 reads 1e-4 as a string
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is type(None):
        if value is None:
            return None
    elif hint is pathlib.Path:
        if isinstance(value, str) and value:
            return absolute(value, base)
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value
    raise Problem(f"must be {type_name(hint)}, got {value!r}")


def parameters(fn, skip=()) -> dict[str, tuple[Any, Any]]:
    """name -> (type hint, default or inspect.Parameter.empty) of `fn`'s keyword arguments.

    A class whose `__init__` passes `**options` on to its base class also takes the base
    class's keyword arguments; so does a bound method whose `**options` go to the method of
    the same name in a base class (see `method_parameters`). Read once per function
    (resolving type hints costs about a millisecond, and a server checks every request's
    options)."""
    if inspect.ismethod(fn) and not isinstance(fn.__self__, type):
        return method_parameters(type(fn.__self__), fn.__name__, skip)
    key = (getattr(fn, "__func__", fn), tuple(skip))
    try:
        found = _PARAMETERS.get(key)
    except TypeError:  # an unhashable callable: not cached
        return _parameters(fn, skip)
    if found is None:
        found = _PARAMETERS[key] = _parameters(fn, skip)
    return {name: (hint, _fresh(default)) for name, (hint, default) in found.items()}


_PARAMETERS: dict = {}


def method_parameters(cls: type, name: str, skip=()) -> dict[str, tuple[Any, Any]]:
    """name -> (type hint, default) of the keyword arguments `cls.<name>` takes: its own, and,
    where it passes `**options` on, those of the same method in the classes it inherits from
    (the nearest definition of an argument wins). A subclass adds options without restating
    its parent's. Read once per (class, method), as `parameters` is."""
    key = (cls, name, tuple(skip))
    found = _METHODS.get(key)
    if found is None:
        found = _METHODS[key] = _method_parameters(cls, name, skip)
    return {n: (hint, _fresh(default)) for n, (hint, default) in found.items()}


_METHODS: dict = {}


def _method_parameters(cls: type, name: str, skip=()) -> dict[str, tuple[Any, Any]]:
    found = []  # each defining class's own arguments, nearest first
    for owner in cls.__mro__:
        method = vars(owner).get(name)
        if method is None:
            continue
        found.append(parameters(method, skip))
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(method).parameters.values()):
            break
    out: dict[str, tuple[Any, Any]] = {}
    for own in reversed(found):  # the base's order first, then what each subclass adds
        out.update(own)
    return out


def _fresh(default):
    """A default as the signature gives it, not a copy shared between callers that change it."""
    import copy

    return default if isinstance(default, (int, float, str, bool, type(None), tuple)) or default is inspect.Parameter.empty \
        else copy.deepcopy(default)


def _parameters(fn, skip=()) -> dict[str, tuple[Any, Any]]:
    if isinstance(fn, type):
        out: dict[str, tuple[Any, Any]] = {}
        for cls in fn.__mro__:
            if "__init__" not in vars(cls) or cls is object:
                continue
            for name, spec in _own_parameters(cls, skip).items():
                out.setdefault(name, spec)
            init = inspect.signature(cls.__init__).parameters.values()
            if not any(p.kind is p.VAR_KEYWORD for p in init):
                break
        return out
    return _own_parameters(fn, skip)


def _own_parameters(fn, skip=()) -> dict[str, tuple[Any, Any]]:
    target = fn.__init__ if isinstance(fn, type) else fn
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: check names and defaults only
        hints = {}
    factories = {}
    if dataclasses.is_dataclass(fn):
        factories = {f.name: f.default_factory for f in dataclasses.fields(fn)
                     if f.default_factory is not dataclasses.MISSING}
    out = {}
    for name, p in inspect.signature(target).parameters.items():
        if name in skip or name == "self" and isinstance(fn, type) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.kind is p.POSITIONAL_ONLY:
            continue
        out[name] = (hints.get(name, Any), factories[name]() if name in factories else p.default)
    return out


def check_args(fn, values: dict, skip=(), base=None, params: dict | None = None) -> tuple[dict, list[tuple[str, str]]]:
    """Check `values` against `fn`'s signature (or against `params`, as `parameters` gives).

    Returns the resolved arguments (defaults filled in) and a list of (key, message) problems.
    `base` is the folder relative paths start from: a string, or a function of the key.
    """
    params = parameters(fn, skip) if params is None else params
    problems: list[tuple[str, str]] = []
    resolved: dict = {}
    for key in values:
        if key not in params:
            hint = did_you_mean(str(key), params) or (
                f" (valid keys: {', '.join(params)})" if params else " (this takes no options)"
            )
            problems.append((str(key), f"unknown key{hint}"))
    for name, (hint, default) in params.items():
        if name in values:
            try:
                resolved[name] = coerce(values[name], hint, base(name) if callable(base) else base)
            except Problem as p:
                problems.append((name, p.message))
        elif default is inspect.Parameter.empty:
            problems.append((name, f"missing required key ({type_name(hint)})"))
        else:  # plain YAML data
            resolved[name] = list(default) if isinstance(default, tuple) else \
                str(default) if isinstance(default, pathlib.PurePath) else default
    return resolved, problems


def construct(fn, values: dict, skip=()):
    """Call `fn` (a plugin class, or a method) with resolved recipe values: the paths that the
    recipe keeps as strings become `pathlib.Path` where the signature asks for one."""
    params = parameters(fn, skip)
    return fn(**{k: pathlib.Path(v) if isinstance(v, str) and _wants_path(params.get(k, (Any,))[0]) else v
                 for k, v in values.items()})


def _wants_path(hint) -> bool:
    if hint is pathlib.Path:
        return True
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _wants_path(typing.get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return any(_wants_path(a) for a in typing.get_args(hint))
    return False


def flag(name: str) -> str:
    """The command-line spelling of an option: `beam_size` -> `--beam-size`."""
    return "--" + name.replace("_", "-")


def check_text(value: str, where: str) -> None:
    """A command-line value is UTF-8 text: bytes that are not arrive as lone surrogates
    (Python's surrogateescape), which no tokenizer can take."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(value[exc.start]) - 0xDC00 if 0xDC80 <= ord(value[exc.start]) <= 0xDCFF else None
        shown = f" (byte 0x{byte:02x})" if byte is not None else ""
        from seqcli.errors import SeqcliError

        raise SeqcliError(f"{where}: not valid UTF-8{shown}") from None


# -- JSON Schema of options: the server's OpenAPI document, an export's config ------------------

def json_schema(hint) -> dict:
    """A type hint as JSON Schema (types, bounds, choices)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        schema = json_schema(base)
        for m in meta:
            if isinstance(m, Range):
                if m.lo is not None:
                    schema["exclusiveMinimum" if m.lo_open else "minimum"] = m.lo
                if m.hi is not None:
                    schema["exclusiveMaximum" if m.hi_open else "maximum"] = m.hi
            if isinstance(m, Output):
                schema = {"type": "string"}
        return schema
    if origin in (Union, types.UnionType):
        options = [json_schema(a) for a in typing.get_args(hint)]
        return {"anyOf": options}
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return {"type": "array", **({"items": json_schema(args[0])} if args else {})}
    return {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}, bool: {"type": "boolean"},
            type(None): {"type": "null"}}.get(hint, {})


def options_schema(params: dict, recipe_values: dict, skip=()) -> dict:
    """name -> {schema..., "default": the recipe's value or the signature's, "required"}."""
    out = {}
    for name, (hint, default) in params.items():
        if name in skip:
            continue
        value = recipe_values.get(name, default)
        entry = json_schema(hint)
        if value is not inspect.Parameter.empty:
            entry["default"] = list(value) if isinstance(value, tuple) else value
        else:
            entry["required"] = True
        out[name] = entry
    return out
