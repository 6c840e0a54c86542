"""The documentation's reference pages, generated from the code at build time (docs/hooks.py),
never kept by hand: every command and option (from the command line itself), every recipe
key (from `TrainConfig` and the built-in tasks' signatures: type, bound, default, help), each
task's sample options, and the plugin API (from `seqcli.api`'s and `seqcli.layers`'
docstrings). tests/test_docs.py checks that they are complete.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# -- commands -----------------------------------------------------------------------------------

def commands() -> list[tuple[str, object]]:
    """(name, command) for the root and every command and sub-command, in the CLI's order."""
    import typer

    from seqcli.cli import app

    out = []

    def walk(command, path: list[str]) -> None:
        out.append((" ".join(path), command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, path + [name])

    walk(typer.main.get_command(app), ["seqcli"])
    return out


def options(command) -> list:
    """A command's options and arguments (the help flag and hidden ones aside)."""
    return [p for p in command.params if getattr(p, "opts", None) != ["--help"] and not getattr(p, "hidden", False)]


def cli_page() -> str:
    lines = ["# Commands", "",
             "Every `seqcli` command and option, read from the command line itself when this page is built "
             "(`seqcli COMMAND --help` says the same). `sample` and `evaluate` also take the options of the "
             "run's task: see [Tasks and their options](tasks.md).", ""]
    for name, command in commands():
        lines += [f"## `{name}`", "", inspect.cleandoc(command.help or "").replace("\b\n", ""), ""]
        params = options(command)
        if not params:
            continue
        lines += ["| option | type | default | what |", "|---|---|---|---|"]
        for param in params:
            flags = ", ".join(f"`{f}`" for f in [*param.opts, *getattr(param, "secondary_opts", [])])
            if getattr(param, "param_type_name", "") == "argument":
                flags = f"`{param.name.upper()}`" + (" ..." if param.nargs == -1 else "")
            lines.append(f"| {flags} | {param_type(param)} | {shown(param.default)} | "
                         f"{cell(getattr(param, 'help', None) or '')} |")
        lines.append("")
    return "\n".join(lines)


def param_type(param) -> str:
    """An option's type and bounds: 'flag', 'int >= 2, <= 100', 'str', ..."""
    if getattr(param, "is_flag", False):
        return "flag"
    kind = param.display_type(None).strip("<>").replace(" range", "")
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    bounds = ", ".join(b for b in (f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None
                                   else "") if b)
    return cell(f"{kind} {bounds}".strip())


def shown(value) -> str:
    if value is None or value == () or value == [] or value is inspect.Parameter.empty or callable(value):
        return ""
    return cell(f"`{value!r}`" if not isinstance(value, bool) else f"`{str(value).lower()}`")


def cell(text: str) -> str:
    """Text for a table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


# -- recipe keys --------------------------------------------------------------------------------

def comments(cls) -> dict[str, str]:
    """The help of each field of a dataclass: its trailing comment, or the comment lines just
    above it."""
    source = inspect.getsource(cls)
    by_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            by_line[token.start[0]] = token.string.lstrip("#").strip()
    body = ast.parse(source).body[0].body
    out = {}
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = node.lineno
            if line in by_line and not source.splitlines()[line - 1].lstrip().startswith("#"):
                out[node.target.id] = by_line[line]
                continue
            above, number = [], line - 1
            while number in by_line and source.splitlines()[number - 1].lstrip().startswith("#"):
                above.insert(0, by_line[number])
                number -= 1
            if above:
                out[node.target.id] = " ".join(above)
    return out


def schema_text(hint, default) -> tuple[str, str]:
    """(type and bounds, default) of a key, as JSON Schema words."""
    from seqcli.schema import json_schema

    schema = json_schema(hint)
    kinds = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"] or [{}]
    main = kinds[0]
    kind = "one of " + ", ".join(f"`{v}`" for v in main["enum"]) if "enum" in main else main.get("type", "any")
    words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    bounds = ", ".join(f"{w} {number(main[k])}" for k, w in words.items() if k in main)
    nullable = len(kinds) < len(schema.get("anyOf", [schema]))
    text = kind + (f" ({bounds})" if bounds else "") + (" or null" if nullable else "")
    if isinstance(default, (tuple, list)) and not default:
        return cell(text), "`[]`"
    return cell(text), shown(default) if default is not None else "`null`"


def number(value) -> str:
    """A bound as a reader reads it: 65,536 and 1,000,000,000, not 1e+09."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def train_keys() -> list[tuple[str, str, str, str]]:
    """(key, type, default, help) of every `train:` key."""
    import dataclasses

    from seqcli.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig, include_extras=True)
    helps = comments(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind, value = schema_text(hints[f.name], default)
        out.append((f.name, kind, value, helps.get(f.name, "")))
    return out


KEY_LINE = re.compile(r"^`?(\w+)`?: (.+)$")


def documented(cls, method: str, shared: dict | None = None) -> dict[str, str]:
    """Help for the keys of `cls.method` (a function: its own): lines `` `key`: what it is ``
    (going on until a blank line) in its docstring and those of the classes it inherits it
    from, over `shared` (by default what the keys the built-in tasks share mean)."""
    from seqcli.tasks.keys import SHARED

    out: dict[str, str] = {}
    functions = [vars(k)[method] for k in cls.__mro__ if method in vars(k)] if inspect.isclass(cls) else [cls]
    for function in functions:
        current = None
        for line in (inspect.getdoc(function) or "").splitlines():
            found = KEY_LINE.match(line.strip())
            if found and found.group(1) not in out:
                current = found.group(1)
                out[current] = found.group(2).strip()
            elif current and line.strip() and not found:
                out[current] += " " + line.strip()
            else:
                current = None
    return {**(SHARED if shared is None else shared), **out}


def task_sections() -> list[str]:
    """Each built-in task's keys (`task:`, `model:`) and sample options."""
    from seqcli import registry
    from seqcli.schema import method_parameters, parameters

    lines = []
    for name in sorted(registry.names("task")):
        if registry.info("task", name).package != "seqcli":
            continue  # a plugin's own options are its documentation's
        cls = registry.load("task", name)
        lines += [f"## `{name}`", "", cell((inspect.getdoc(cls) or "").split("\n\n")[0]), ""]
        for title, method, skip in (("`task:` keys", cls.__init__, {"self"}),
                                    ("`model:` keys", cls.build_model, {"self", "data", "cell"}),
                                    ("sample options (`sample:` keys, `seqcli sample` options)", cls.sample,
                                     {"self", "model", "fields"})):
            params = (parameters(method) if title.startswith("`task") else method_parameters(cls, method.__name__))
            rows = [(k, v) for k, v in params.items() if k not in skip]
            if not rows:
                continue
            helps = documented(cls, method.__name__)
            lines += [f"**{title}**", "", "| key | type | default | what |", "|---|---|---|---|"]
            for key, (hint, default) in rows:
                kind, value = schema_text(hint, None if default is inspect.Parameter.empty else default)
                lines.append(f"| `{key}` | {kind} | {value if default is not inspect.Parameter.empty else 'required'}"
                             f" | {cell(helps.get(key, ''))} |")
            lines.append("")
    return lines


def plugin_keys() -> list[tuple[str, str, list]]:
    """(section, what, rows) for the built-in datasets and cells, and the optimizers and
    schedulers: each one's keys as (key, type, default, help)."""
    from seqcli import optim, registry
    from seqcli.data.keys import KEYS as DATASET_KEYS
    from seqcli.schema import method_parameters, parameters

    out = []
    for kind, section, skip in (("dataset", "dataset", {"self"}), ("cell", "model.cell", {"self", "input_size",
                                                                                           "hidden_size"})):
        for name in sorted(registry.names(kind)):
            if registry.info(kind, name).package != "seqcli":
                continue
            cls = registry.load(kind, name)
            params = method_parameters(cls, "__init__")
            helps = documented(cls, "__init__", DATASET_KEYS if kind == "dataset" else {})
            out.append((section, name, rows(params, skip, helps)))
    from seqcli.data import folds

    out.append(("dataset", "every dataset of separate examples (seqcli's own)",
                rows(parameters(folds.folds), set(), documented(folds.folds, "", {}))))
    for table, section, skip in (("OPTIMIZERS", "train.optimizer", {"params"}),
                                 ("SCHEDULERS", "train.scheduler", {"optimizer", "total_steps"})):
        for name, function in getattr(optim, table).items():
            out.append((section, name, rows(parameters(function), skip, documented(function, "", optim.KEYS))))
    return out


def rows(params: dict, skip: set, helps: dict) -> list[tuple[str, str, str, str]]:
    out = []
    for key, (hint, default) in params.items():
        if key in skip:
            continue
        kind, value = schema_text(hint, None if default is inspect.Parameter.empty else default)
        out.append((key, kind, value if default is not inspect.Parameter.empty else "required", helps.get(key, "")))
    return out


def keys_page() -> str:
    lines = ["# Recipe keys", "",
             "Every key a recipe's `train:` section takes, and each built-in task's `task:` and `model:` keys, "
             "with its type, bounds and default, read from the code when this page is built (`TrainConfig` and "
             "the tasks' signatures, which are also what checks a recipe). A key on the command line is "
             "`train.KEY=VALUE`.", "", "## `train:`", "", "| key | type | default | what |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {kind} | {value} | {cell(text)} |" for k, kind, value, text in train_keys()]
    lines += ["", "Each task's `task:` and `model:` keys, and its sample options: [Tasks and their "
              "options](tasks.md).", ""]
    titles = {"dataset": "`dataset:` (by `name:`)", "model.cell": "`model.cell:` (by `name:`)",
              "train.optimizer": "`train.optimizer:` (by `name:`)", "train.scheduler": "`train.scheduler:` (by `name:`)"}
    shown_section = None
    for section, name, keys in plugin_keys():
        if section != shown_section:
            lines += [f"## {titles[section]}", ""]
            shown_section = section
        lines += [f"### `{name}`" if " " not in name else f"### {name[0].upper() + name[1:]}", ""]
        if not keys:
            lines += ["No keys of its own.", ""]
            continue
        lines += ["| key | type | default | what |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {kind} | {value} | {cell(text)} |" for k, kind, value, text in keys]
        lines.append("")
    return "\n".join(lines + [""])


def tasks_page() -> str:
    return "\n".join(["# Tasks and their options", "",
                      "Each built-in task's recipe keys and sample options, from its signatures: `task:` keys are "
                      "its constructor's, `model:` keys its `build_model`'s, and sample options its `sample`'s "
                      "(`seqcli sample RUN --help` lists a run's).", ""] + task_sections())


# -- the plugin API -------------------------------------------------------------------------------

def api_page() -> str:
    import seqcli.api
    import seqcli.layers

    lines = ["# Plugin API", "", "The names a plugin uses, with their docstrings, read from `seqcli.api` and "
             "`seqcli.layers` when this page is built.", ""]
    for module in (seqcli.api, seqcli.layers):
        lines += [f"## `{module.__name__}`", "", inspect.getdoc(module) or "", ""]
        constants = []
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                constants.append(f"| `{name}` | `{cell(repr(obj))[:80]}` |")
                continue
            try:
                signature = str(inspect.signature(obj))
            except (TypeError, ValueError):
                signature = ""
            kind = "class" if inspect.isclass(obj) else "def"
            lines += [f"### `{name}`", "", "```python", f"{kind} {name}{signature}", "```", "",
                      inspect.getdoc(obj) or "", ""]
        if constants:
            lines += ["### Constants and type aliases", "", "| name | value |", "|---|---|", *constants, ""]
    return "\n".join(lines)


PAGES = {"reference/commands.md": cli_page, "reference/keys.md": keys_page, "reference/tasks.md": tasks_page,
         "reference/api.md": api_page}
