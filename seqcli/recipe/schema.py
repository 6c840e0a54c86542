"""Check plain recipe values against a Python signature and its type hints.

A plugin's constructor (or any function or dataclass) is its schema: every keyword argument
is a recipe key, its type hint is the type the value must have, its default is the value a
missing key gets, and `Annotated[int, Range(1, 4096)]` bounds it. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from typing import Annotated, Any, Literal, Union

from seqcli.errors import did_you_mean


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


class File:
    """`Annotated[str, File()]`: a path to a readable, non-empty file; made absolute, so a run
    directory's recipe still finds it from anywhere."""

    def apply(self, value):
        import os

        path = os.path.abspath(os.path.expanduser(value))
        if not os.path.exists(path):
            raise Problem(f"file not found: {value}")
        if not os.path.isfile(path):
            raise Problem(f"not a file: {value}")
        if not os.access(path, os.R_OK):
            raise Problem(f"file is not readable: {value}")
        if os.path.getsize(path) == 0:
            raise Problem(f"file is empty: {value}")
        return path

    def describe(self) -> str:
        return ""


class Problem(Exception):
    """A value that does not fit its type; `message` says what was expected."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        if any(isinstance(m, File) for m in meta):
            return "a file path"
        ranges = [m.describe() for m in meta if isinstance(m, Range)]
        return type_name(base) + (f" {ranges[0]}" if ranges and ranges[0] else "")
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {type_name(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if hint is type(None):
        return "null"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def coerce(value, hint):
    """`value` checked against `hint` (ints become floats where a float is wanted), or Problem."""
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        value = coerce(value, base)
        for m in meta:
            if value is None:
                break
            if isinstance(m, Range):
                msg = m.check(value)
                if msg:
                    raise Problem(msg)
            elif isinstance(m, File):
                value = m.apply(value)
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
                return coerce(value, arg)
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
        return [coerce(v, args[0]) for v in value] if args else list(value)
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
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is type(None):
        if value is None:
            return None
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value
    raise Problem(f"must be {type_name(hint)}, got {value!r}")


def parameters(fn, skip=()) -> dict[str, tuple[Any, Any]]:
    """name -> (type hint, default or inspect.Parameter.empty) of `fn`'s keyword arguments.

    A class whose `__init__` passes `**options` on to its base class also takes the base
    class's keyword arguments."""
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


def check_args(fn, values: dict, skip=()) -> tuple[dict, list[tuple[str, str]]]:
    """Check `values` against `fn`'s signature.

    Returns the resolved arguments (defaults filled in) and a list of (key, message) problems.
    """
    params = parameters(fn, skip)
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
                resolved[name] = coerce(values[name], hint)
            except Problem as p:
                problems.append((name, p.message))
        elif default is inspect.Parameter.empty:
            problems.append((name, f"missing required key ({type_name(hint)})"))
        else:
            resolved[name] = list(default) if isinstance(default, tuple) else default  # plain YAML data
    return resolved, problems
