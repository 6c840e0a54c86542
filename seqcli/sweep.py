"""Hyperparameter search on Optuna: `seqcli sweep`.

A sweep folder holds `sweep.yaml` (what is searched and how), the study (`study.db`, an
SQLite file, unless `--storage` names another database) and one ordinary run folder per
trial (`trial-0007/`), so `sample`, `evaluate`, `plot` and `resume` work on every trial.
Each trial is a `seqcli run` of the recipe with the trial's values as overrides; after every
evaluation it reports the metric to the study, whose pruner may stop it there. A trial's
value is its best validation value of the metric (that of its best checkpoint).

Workers take trials from the study under a lock in the sweep folder, so `--trials N` means N
trials however many workers share the study; a worker holds its trial's run-folder lock
while it trains, so a trial left RUNNING by a killed worker is recognised (its lock is free)
and `seqcli sweep resume` finishes it: resumed from its last checkpoint, or started again
when it had none.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from typing import Annotated, Literal

from seqcli.errors import ConfigError, RecipeError, SeqcliError, did_you_mean
from seqcli.files import Lock
from seqcli.runfolder import RunFolder
from seqcli.schema import Range, Seed

KINDS = {
    "uniform": "uniform(low, high): a number between low and high",
    "loguniform": "loguniform(low, high): a number between low and high, on a log scale (low > 0)",
    "int": "int(low, high): an integer from low to high",
    "logint": "logint(low, high): an integer from low to high, on a log scale (low >= 1)",
    "choice": "choice(a, b, ...): one of the values",
}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
SWEEP_FILE = "sweep.yaml"
MAX_CHOICES = 1000


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise SeqcliError("seqcli sweep needs Optuna: pip install 'seqcli[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


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


@dataclass
class Spec:
    """What a sweep searches, stored in its folder as sweep.yaml (checked like a recipe when
    read back: a damaged file is one line)."""

    recipe: str
    overrides: list[str]
    params: list[dict]  # of Param as dicts
    trials: Annotated[int, Range(1, 100_000)]
    metric: str = "loss"
    maximize: bool = False
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    storage: str | None = None
    study: str = "sweep"
    seed: Seed = 0
    parallel: Annotated[int, Range(1, 256)] = 1
    threads: Annotated[int, Range(1, 1024)] | None = None

    @property
    def space(self) -> list[Param]:
        return [Param(**p) for p in self.params]

    def storage_url(self, folder: Path) -> str:
        return self.storage or f"sqlite:///{(folder / 'study.db').resolve()}"

    def sqlite_file(self, folder: Path) -> Path | None:
        """The SQLite file the study is in, or None for a database server."""
        url = self.storage_url(folder)
        return Path(url.removeprefix("sqlite:///").partition("?")[0]) if url.startswith("sqlite:///") else None

    def save(self, folder: Path) -> None:
        from seqcli.files import write_atomic

        write_atomic(folder / SWEEP_FILE, yaml.safe_dump(asdict(self), sort_keys=False, allow_unicode=True))

    @classmethod
    def load(cls, folder: Path) -> Spec:
        from seqcli.files import read_regular
        from seqcli.recipe.load import parse_yaml
        from seqcli.schema import check_args

        path = Path(folder) / SWEEP_FILE
        if not path.is_file():
            raise SeqcliError(f"{folder}: not a sweep folder (no {SWEEP_FILE})")
        try:
            data = parse_yaml(read_regular(path, 1 << 20).decode("utf-8"), str(path))[1]
        except (OSError, ValueError) as exc:
            raise SeqcliError(f"{path}: damaged ({exc})") from None
        except RecipeError as exc:
            raise SeqcliError(f"{path}: damaged ({exc.problems[0]})") from None
        if not isinstance(data, dict):
            raise SeqcliError(f"{path}: damaged (not a mapping)")
        values, problems = check_args(cls, data)
        if problems:
            raise SeqcliError(f"{path}: damaged ({problems[0][0]}: {problems[0][1]})")
        spec = cls(**values)
        for i, p in enumerate(spec.params):  # each searched key as `parse` would have made it
            try:
                if not isinstance(p, dict) or set(p) != {"key", "kind", "args", "origin"} or \
                        not isinstance(p["args"], list) or not isinstance(p["key"], str):
                    raise RecipeError(["must be {key, kind, args, origin}"])
                again = parse(p["key"], f"{p['kind']}({', '.join(dump(a) for a in p['args'])})", str(p["origin"]))
                if again.args != p["args"] and p["kind"] != "choice":
                    raise RecipeError([f"bounds {p['args']}"])
            except RecipeError as exc:
                raise SeqcliError(f"{path}: damaged (params.{i}: {exc.problems[0]})") from None
        return spec


def storage_url(url: str | None) -> str | None:
    """A `--storage` URL as stored: a relative SQLite path made absolute (workers may start
    elsewhere); a study in memory refused (it is lost when its worker stops)."""
    if url is None or not url.startswith("sqlite:"):
        return url
    if not url.startswith("sqlite:///") or url.partition("?")[0] in ("sqlite:///", "sqlite:///:memory:") \
            or "mode=memory" in url:
        raise SeqcliError(f"--storage {url}: a study in memory is lost when its worker stops and cannot be "
                          f"shared; give a file, e.g. sqlite:///study.db")
    path, sep, query = url.removeprefix("sqlite:///").partition("?")
    return f"sqlite:///{Path(path).expanduser().resolve()}{sep}{query}"


def sampler_for(spec: Spec, seed: int):
    """The spec's sampler, seeded with `seed`: the sweep gives each new trial its own seed (the
    study's seed and the trial's number), so a resumed sweep or a second worker never repeats
    the values an earlier trial was given."""
    optuna = require_optuna()
    if spec.sampler == "grid":
        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values) -> None:
                """Optuna's stops `study.optimize` here; a sweep asks `is_exhausted` itself."""

        # one seed for every trial: it fixes the order of the grid; the study knows which points
        # were taken, running ones included
        return Grid({p.key: p.grid() for p in spec.space}, seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def trial_seed(spec: Spec, number: int) -> int:
    return (spec.seed * 1_000_003 + 7919 * number) % 2**32


def open_study(spec: Spec, folder: Path, create: bool):
    """The study, with the spec's sampler and pruner; an unreachable storage is one line. A
    study that exists already is joined only when it searches the same space of the same
    recipe for the same metric: a study records what it searches (its user attribute
    `seqcli`)."""
    optuna = require_optuna()
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
              "hyperband": lambda: optuna.pruners.HyperbandPruner(),
              "none": lambda: optuna.pruners.NopPruner()}[spec.pruner]()
    url = spec.storage_url(folder)
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_options(url))
        sampler = sampler_for(spec, trial_seed(spec, 0))
        if not create:
            return optuna.load_study(storage=storage, study_name=spec.study, sampler=sampler, pruner=pruner)
        study = optuna.create_study(storage=storage, study_name=spec.study, sampler=sampler, pruner=pruner,
                                    direction="maximize" if spec.maximize else "minimize", load_if_exists=True)
    except ImportError as exc:
        raise SeqcliError(f"--storage {url}: a driver is missing ({exc})") from None
    except SeqcliError:
        raise
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's and optuna's errors, in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeqcliError(f"--storage {url}: cannot use it ({first})") from None
    searched = identity(spec)
    known = study.user_attrs.get("seqcli")
    if known is None and not study.get_trials(deepcopy=False):
        study.set_user_attr("seqcli", searched)
    elif known != searched:
        what = [k for k in searched if not isinstance(known, dict) or known.get(k) != searched[k]]
        raise SeqcliError(f"--storage {url}: study '{spec.study}' exists there and searches something else "
                          f"(its {', '.join(what) or 'origin'} differ{'s' if len(what) == 1 else ''}); join it with "
                          f"the same recipe, overrides and space, or give another --study name")
    return study


def identity(spec: Spec) -> dict:
    """What a study searches: the recipe resolved with the overrides, the space, the metric."""
    import json

    from seqcli.recipe.resolve import load_recipe

    recipe = load_recipe(spec.recipe, spec.overrides).to_data()
    space = [{"key": p.key, "kind": p.kind, "args": p.args} for p in spec.space]
    return json.loads(json.dumps({"recipe": recipe, "space": space, "metric": spec.metric,
                                  "maximize": spec.maximize}, default=str))


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # several workers write to one file
    return {"pool_pre_ping": True}


def lock_path(spec: Spec, folder: Path) -> Path:
    """Workers of one folder, or of any folders sharing one SQLite file, take the same lock
    (workers on other machines sharing a server database each take their own: the study may
    then get up to one extra trial per machine)."""
    file = spec.sqlite_file(folder)
    return Path(f"{file}.seqcli-lock") if file is not None else folder / ".sweep.lock"


def locked(path: Path) -> Lock:
    """The lock on `path`, held for a `with` block (released by the OS if the process dies)."""
    return Lock(path, "sweep lock")


def sweep_lock(folder: Path):
    """Trials are asked for one worker at a time, so their count is exact."""
    return locked(lock_path(Spec.load(folder), folder))


def trial_dir(folder: Path, number: int) -> Path:
    return folder / f"trial-{number:04d}"


def trial_lock(folder: Path, number: int) -> Path:
    return folder / f".trial-{number:04d}.lock"


def is_held(path: Path) -> bool:
    """Whether a live process holds the lock on `path` (the OS frees it when a process dies)."""
    return Lock.held(path)


class Reporter:
    """After each evaluation: report the metric to the trial; stop the run if pruned."""

    def __init__(self, trial, metric: str, optuna):
        self.trial, self.metric, self.optuna = trial, metric, optuna
        self.pruned_at: int | None = None

    def __call__(self, step: int, metrics: dict) -> None:
        if self.metric not in metrics:
            raise SeqcliError(f"--metric {self.metric}: the task reports {', '.join(k for k, v in metrics.items() if not isinstance(v, str))}")
        value = float(metrics[self.metric])
        if not math.isfinite(value):
            return
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned_at = step
            raise Pruned(step)


class Pruned(SeqcliError):
    def __init__(self, step: int):
        super().__init__(f"pruned at step {step}")
        self.step = step


def trial_value(run_dir: Path, metric: str, maximize: bool) -> float | None:
    """The best validation value of `metric` the run recorded."""
    values = [float(r[metric]) for r in RunFolder(run_dir).validation_records()
              if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if not values:
        return None
    return max(values) if maximize else min(values)


def run_trial(spec: Spec, folder: Path, study, trial, values: dict, console, resume: bool = False) -> str:
    """Train one trial's run folder with its `values` (or resume it); tell the study how it
    ended. Whatever the trial does (fails, diverges, reports NaN, raises), the worker goes on."""
    optuna = require_optuna()
    from seqcli import runs
    from seqcli.recipe.resolve import load_recipe

    run_dir = trial_dir(folder, trial.number)
    overrides = spec.overrides + [f"{k}={dump(v)}" for k, v in values.items()]
    reporter = Reporter(trial, spec.metric, optuna)
    from rich.console import Console

    quiet = Console(quiet=True)  # a trial's own progress stays in its run folder; the sweep prints a line
    state, note = "complete", ""
    try:
        if resume and RunFolder(run_dir).recipe.is_file():
            runs.resume(run_dir, None, [], False, quiet, on_evaluation=reporter, threads=spec.threads)
        else:
            if resume and run_dir.exists():
                shutil.rmtree(run_dir)  # killed before it wrote anything worth keeping
            recipe = load_recipe(spec.recipe, overrides)
            recipe.train.threads = spec.threads or recipe.train.threads
            runs.train(recipe, run_dir, quiet, on_evaluation=reporter)
    except Pruned as exc:
        state, note = "pruned", f" at step {exc.step}"
    except SeqcliError as exc:
        if getattr(exc, "label", "") == "stopped":  # Ctrl-C: the trial stays running, for `sweep resume`
            raise
        state, note = "failed", f": {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    except Exception as exc:  # noqa: BLE001 - a plugin's bug fails its trial, not the sweep
        state, note = "failed", f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    value = trial_value(run_dir, spec.metric, spec.maximize)
    if state == "complete" and value is None:
        state, note = "failed", f": no finite validation {spec.metric} (NaN or infinite at every evaluation)"
    with sweep_lock(folder):
        if state == "complete":
            study.tell(trial, value)
        else:
            trial.set_user_attr("note", note.removeprefix(": ").strip())
            study.tell(trial, state=optuna.trial.TrialState.PRUNED if state == "pruned"
                       else optuna.trial.TrialState.FAIL)
        best = sync_best(folder, study)
    shown = ", ".join(f"{k.rpartition('.')[2]} {_short(v)}" for k, v in values.items())
    measured = f"{spec.metric} {value:.4f}" if value is not None else "no value"
    best_text = f"best: trial {best.number} ({best.value:.4f})" if best is not None else "best: none yet"
    console.print(f"trial {trial.number} {state}{note}: {measured} ({shown}); {best_text}", highlight=False,
                  markup=False)
    return state


def sync_best(folder: Path, study):
    """best.yaml is the best trial's recipe: rewritten from the study whenever it differs (a
    kill between the study's update and the copy leaves it stale only until the next worker
    or `sweep show`). Returns the best trial, or None."""
    from seqcli.files import write_atomic

    best = _best(study)
    if best is None:
        return None
    source = RunFolder(trial_dir(Path(best.user_attrs.get("folder", folder)), best.number)).recipe
    try:
        text = source.read_bytes()
        if not (folder / "best.yaml").is_file() or (folder / "best.yaml").read_bytes() != text:
            write_atomic(folder / "best.yaml", text)
    except OSError:  # the best trial's folder is on another machine, or gone
        pass
    return best


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else dump(value)


def _best(study):
    try:
        return study.best_trial
    except ValueError:
        return None


def work(folder: Path, console, threads: int | None = None) -> None:
    """A worker: finish trials a stopped sweep left running, then take new ones until the
    study has `trials` of them (or a grid is exhausted). Each trial is taken, tagged with its
    folder and given its values under the sweep lock, and worked on holding its own lock, so
    no trial is taken twice, no two trials are given values at the same time, and a dead
    worker's trial is seen: one left running is resumed, one it asked for but never tagged is
    replaced."""
    import time

    optuna = require_optuna()
    spec = Spec.load(folder)
    spec.threads = threads or spec.threads  # a --parallel worker's share of the cores
    study = open_study(spec, folder, create=False)
    running = optuna.trial.TrialState.RUNNING
    here = str(folder.resolve())
    shared = spec.sqlite_file(folder) is not None  # every worker of this study takes the one lock
    while True:
        with contextlib.ExitStack() as stack:
            with sweep_lock(folder):
                sync_best(folder, study)
                trials = study.get_trials(deepcopy=False)
                untagged = [t for t in trials if t.state == running and "folder" not in t.user_attrs and (
                    shared or time.time() - t.datetime_start.timestamp() > 600)]
                for t in untagged:  # asked for by a worker that died before tagging it
                    _replace(study, t, "asked for by a worker that stopped before it began")
                if untagged:
                    continue
                orphan = next((t for t in trials if t.state == running and t.user_attrs.get("folder") == here
                               and not is_held(trial_lock(folder, t.number))), None)
                if orphan is not None:
                    trial = optuna.trial.Trial(study, orphan._trial_id)
                    if set(orphan.params) != {p.key for p in spec.space}:  # stopped before its values were chosen
                        _replace(study, orphan, "stopped before its values were chosen")
                        continue
                    values = {p.key: p.args[orphan.params[p.key]] if p.kind == "choice" else orphan.params[p.key]
                              for p in spec.space}
                else:
                    counted = sum(1 for t in trials if not t.user_attrs.get("replaced"))
                    study.sampler = sampler_for(spec, trial_seed(spec, len(trials)))
                    if counted >= spec.trials:
                        return
                    if spec.sampler == "grid" and study.sampler.is_exhausted(study):
                        console.print(f"the grid is exhausted: every combination was tried ({counted} trials)",
                                      highlight=False)
                        return
                    trial = study.ask()
                    trial.set_user_attr("folder", here)
                    values = {p.key: p.suggest(trial) for p in spec.space}
                stack.enter_context(locked(trial_lock(folder, trial.number)))
            if orphan is not None:
                console.print(f"trial {trial.number}: left running by a stopped sweep; resuming it", highlight=False)
            run_trial(spec, folder, study, trial, values, console, resume=orphan is not None)


def _replace(study, frozen, why: str) -> None:
    """A trial that never trained: failed, marked replaced (it does not count toward --trials)."""
    optuna = require_optuna()
    trial = optuna.trial.Trial(study, frozen._trial_id)
    trial.set_user_attr("replaced", True)
    trial.set_user_attr("note", why)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def summary(folder: Path) -> tuple[Spec, object]:
    spec = Spec.load(folder)
    return spec, open_study(spec, folder, create=False)


def importances(study) -> dict:
    """Each searched key's importance, once two trials have finished."""
    optuna = require_optuna()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study)
    except Exception:  # noqa: BLE001 - too few distinct values to tell
        return {}
