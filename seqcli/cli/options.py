"""Command-line options derived from a task's own signatures (`sample`, `evaluate`).

A plugin task's options work exactly like a built-in task's: `--name VALUE` (or
`--name=VALUE`), `--flag` / `--no-flag` for true-or-false options, each value read as YAML
(`5` is a number, `[1, 2]` a list) except where the option takes a string.
"""

from __future__ import annotations

import inspect
import types
import typing

from seqcli.errors import SeqcliError
from seqcli.schema import check_text, flag, flags

def _takes(hint, kind) -> bool:
    if hint is kind:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _takes(typing.get_args(hint)[0], kind)
    if origin in (typing.Union, types.UnionType):
        return any(_takes(a, kind) for a in typing.get_args(hint) if a is not type(None))
    return False


def parse(args: list[str], params: dict, task: str) -> dict:
    """`--name value` pairs -> {name: value}, for the options in `params` (from
    `seqcli.schema.parameters`). An unknown option is one line listing those the task takes."""
    from seqcli.errors import RecipeError
    from seqcli.recipe.load import parse_yaml

    out: dict = {}
    spelled = flags(params)  # the short flags and switches the task declares (`Flag`)
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token in spelled and spelled[token][1] is not None:  # a switch: --greedy
            out[spelled[token][0]] = spelled[token][1]
            continue
        if token in spelled:  # a short flag: -t 0.5
            name, eq, raw = spelled[token][0], "", None
        elif token.startswith("--") and len(token) > 2:
            name, eq, raw = token[2:].partition("=")
            name = name.replace("-", "_")
        else:
            raise SeqcliError(f"unexpected argument {token!r} (options of the {task} task come as --name value)")
        if name.startswith("no_") and name[3:] in params and _takes(params[name[3:]][0], bool) and not eq:
            out[name[3:]] = False
            continue
        if name not in params:
            raise SeqcliError(f"{flag(name)}: the {task} task does not take this option (it takes: "
                              f"{', '.join(flag(p) for p in params) or 'none'})")
        hint = params[name][0]
        if _takes(hint, bool) and not eq:
            out[name] = True
            continue
        if not eq:
            if i >= len(args):
                raise SeqcliError(f"{flag(name)}: needs a value")
            raw = args[i]
            i += 1
        check_text(raw, flag(name))
        if _takes(hint, str) or hint is inspect.Parameter.empty:
            out[name] = raw
            continue
        try:
            out[name] = parse_yaml(raw, flag(name), lines=False)[1] if raw.strip() else ""
        except RecipeError as exc:
            raise SeqcliError(exc.problems[0].replace("invalid YAML", f"cannot read the value {raw!r}")) from None
    return out


def describe(params: dict, skip=()) -> list[tuple[str, str, str]]:
    """(flag, type, default) rows for help screens."""
    from seqcli.schema import type_name

    rows = []
    extra = flags(params)
    for name, (hint, default) in params.items():
        if name in skip:
            continue
        shown = "required" if default is inspect.Parameter.empty else repr(default)
        spelled = flag(name) + "".join(f", {s}" if v is None else f", {s} (= {v!r})"
                                       for s, (n, v) in extra.items() if n == name)
        if _takes(hint, bool):
            spelled += f" / --no-{name.replace('_', '-')}"
        rows.append((spelled, type_name(hint), shown))
    return rows
