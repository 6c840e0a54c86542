"""JSON Schema of a task's sample options, from the same signature seqcli checks them
against: the server's OpenAPI document and its page are built from it."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Annotated, Literal, Union

from seqcli.api import INPUTS
from seqcli.schema import Output, Range


def of(hint) -> dict:
    """A type hint as JSON Schema (types, bounds, choices)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        schema = of(base)
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
        options = [of(a) for a in typing.get_args(hint)]
        return {"anyOf": options}
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return {"type": "array", **({"items": of(args[0])} if args else {})}
    return {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}, bool: {"type": "boolean"},
            type(None): {"type": "null"}}.get(hint, {})


def options_schema(params: dict, recipe_values: dict, skip=()) -> dict:
    """name -> {schema..., "default": the recipe's value or the signature's, "required"}."""
    out = {}
    for name, (hint, default) in params.items():
        if name in skip:
            continue
        value = recipe_values.get(name, default)
        entry = of(hint)
        if value is not inspect.Parameter.empty:
            entry["default"] = list(value) if isinstance(value, tuple) else value
        else:
            entry["required"] = True
        out[name] = entry
    return out


def request_schema(params: dict, recipe_values: dict, pictures: list[str], stream: bool) -> dict:
    """The body of POST /v1/predict (or /v1/generate): the task's options, `pictures`, and
    for generate `stream`."""
    properties = options_schema(params, recipe_values, skip=pictures)
    for entry in properties.values():
        entry.pop("required", None)
    if pictures:
        properties["pictures"] = {"type": "array", "items": {"enum": pictures},
                                  "description": "pictures whose numbers the answer carries"}
    if stream:
        properties["stream"] = {"type": "boolean", "default": False,
                                "description": "send each token as a server-sent event as it is drawn"}
    required = [INPUTS] if INPUTS in params else []
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
