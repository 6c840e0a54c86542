"""What a sweep searches: recipe keys and their distributions, checked like recipe keys."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import yaml

from seqcli.errors import ConfigError, RecipeError, SeqcliError, did_you_mean

KINDS = {
    "uniform": "uniform(low, high): a number between low and high",
    "loguniform": "loguniform(low, high): a number between low and high, on a log scale (low > 0)",
    "int": "int(low, high): an integer from low to high",
    "logint": "logint(low, high): an integer from low to high, on a log scale (low >= 1)",
    "choice": "choice(a, b, ...): one of the values",
}
MAX_CHOICES = 1000  # values of one choice()
MAX_CHECKED = 2000  # values of the whole space (each checked against the recipe before the sweep starts)
MAX_GRID = 1_000_000  # points of a grid search


@dataclass
class Param:
    """One searched recipe key: `key` dotted, `kind` one of KINDS, `args` its bounds or choices."""

    key: str
    kind: str
    args: list
    origin: str = "?"

    def candidates(self) -> list:
        """The values to check against the recipe's schema before anything runs: every
        choice, or both bounds."""
        return [int(a) for a in self.args] if self.kind in ("int", "logint") else list(self.args)

    def suggest(self, trial):
        low, high = (self.args + [None, None])[:2]
        if self.kind == "uniform":
            return trial.suggest_float(self.key, low, high)
        if self.kind == "loguniform":
            return trial.suggest_float(self.key, low, high, log=True)
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.key, low, high, log=self.kind == "logint")
        index = trial.suggest_categorical(self.key, list(range(len(self.args))))  # any YAML value, by position
        return self.args[index]

    def grid(self) -> list:
        if self.kind == "choice":
            return list(range(len(self.args)))
        if self.kind in ("int", "logint") and self.args[1] - self.args[0] <= 64:
            return list(range(int(self.args[0]), int(self.args[1]) + 1))
        raise ConfigError(self.key, f"the grid sampler needs choice(...) or a small int(...) range, "
                                    f"not {self.kind}{tuple(self.args)}")


def parse(key: str, text, origin: str) -> Param:
    """`key` = a distribution expression, e.g. `loguniform(1e-4, 1e-2)`."""
    def bad(message: str) -> RecipeError:
        return RecipeError([f"{origin}: {key}: {message}"])

    if not isinstance(text, str):
        raise bad(f"expected a distribution such as {KINDS['uniform'].split(':')[0]} or choice(a, b), got {text!r}")
    match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", text, re.S)
    if not match:
        raise bad(f"expected a distribution such as uniform(0, 0.5), loguniform(1e-4, 1e-2), int(16, 256) "
                  f"or choice(a, b), got {text!r}")
    kind, inner = match.groups()
    if kind not in KINDS:
        raise bad(f"unknown distribution '{kind}'{did_you_mean(kind, KINDS)}; one of: {', '.join(KINDS)}")
    from seqcli.recipe.load import parse_yaml

    try:
        args = parse_yaml(f"[{inner}]", origin, lines=False)[1]
    except RecipeError as exc:
        problem = exc.problems[0].removeprefix(f"{origin}: ").removeprefix("invalid YAML: ")
        raise bad(f"{kind}(...): its values do not parse ({problem})") from None
    if kind == "choice":
        if not args:
            raise bad("choice() needs at least one value")
        if len(args) > MAX_CHOICES:
            raise bad(f"choice() of {len(args):,} values; a search takes at most {MAX_CHOICES:,} (every one is "
                      f"checked against the recipe before the sweep starts)")
        return Param(key, kind, args, origin)
    if len(args) != 2:
        raise bad(f"{KINDS[kind]}; got {len(args)} value{'s' if len(args) != 1 else ''}")
    try:
        low, high = (float(a) if kind in ("uniform", "loguniform") else _integer(a) for a in args)
    except (TypeError, ValueError):
        raise bad(f"{KINDS[kind]}; got {inner.strip()!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise bad(f"{kind}: low must be below high, got {low} and {high}")
    if kind == "loguniform" and low <= 0 or kind == "logint" and low < 1:
        raise bad(f"{kind}: low must be {'> 0' if kind == 'loguniform' else '>= 1'} on a log scale, got {low}")
    return Param(key, kind, [low, high], origin)


def _integer(value) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise ValueError(value)
    return int(value)


def split_arguments(arguments: list[str]) -> tuple[list[str], list[Param]]:
    """Command-line `key=value`s: plain overrides, and searched keys (`key=kind(...)`)."""
    overrides, params = [], []
    for item in arguments:
        key, sep, value = item.partition("=")
        if sep and re.fullmatch(r"\s*[A-Za-z_]\w*\s*\(.*\)\s*", value, re.S):  # name(...): searched (or a typo)
            params.append(parse(key.strip(), value, f"override '{item}'"))
        else:
            overrides.append(item)
    return overrides, params


def read_space(path: str) -> list[Param]:
    """A space file: a mapping of dotted recipe keys to distributions, with their lines."""
    from seqcli.files import read_regular
    from seqcli.recipe.load import MAX_BYTES, parse_yaml

    try:
        raw = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise SeqcliError(f"--space: {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise SeqcliError(f"--space: {path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); a space "
                          f"is a YAML file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SeqcliError(f"--space: {path}: not valid UTF-8") from None
    node, data = parse_yaml(text, path)
    if not isinstance(data, dict) or not data:
        raise RecipeError([f"{path}: a space file maps recipe keys to distributions, e.g. "
                           f"'train.optimizer.lr: loguniform(1e-4, 1e-2)'"])
    lines: dict[str, int] = {}
    for k, _ in node.value:
        if str(k.value) in lines:
            raise RecipeError([f"{path}:{k.start_mark.line + 1}: {k.value}: duplicate key (also on line "
                               f"{lines[str(k.value)]})"])
        lines[str(k.value)] = k.start_mark.line + 1
    return [parse(str(key), value, f"{path}:{lines.get(str(key), '?')}") for key, value in data.items()]


def check_space(recipe: str, overrides: list[str], params: list[Param]) -> None:
    """Every searched key exists and every bound or choice is a value the recipe accepts:
    the recipe is checked with each of them, and a problem names the space's line."""
    from seqcli.recipe.resolve import load_recipe

    if not params:
        raise SeqcliError("nothing to search: give a --space file or key=distribution(...) arguments")
    keys = [p.key for p in params]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SeqcliError(f"searched twice: {', '.join(twice)}")
    plain = {o.partition("=")[0] for o in overrides}
    for p in params:
        if p.key in plain:
            raise SeqcliError(f"{p.origin}: {p.key}: both searched and set by an override")
    total = sum(len(p.candidates()) for p in params)
    if total > MAX_CHECKED:  # bounded before checking: each value costs a recipe check
        raise SeqcliError(f"the space holds {total:,} values to check ({len(params)} keys' choices and bounds); a "
                          f"search takes at most {MAX_CHECKED:,} in all")
    for p in params:
        for value in p.candidates():
            try:
                load_recipe(recipe, overrides + [f"{p.key}={dump(value)}"])
            except RecipeError as exc:
                problem = exc.problems[0]
                raise RecipeError([f"{p.origin}: {p.key}={dump(value)}: {problem.split(': ', 1)[-1]}"]) from None


def dump(value) -> str:
    """A value as an override's YAML."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else dump(value)
