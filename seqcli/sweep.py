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
import fcntl
import math
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from seqcli.errors import ConfigError, RecipeError, SeqcliError, did_you_mean

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
    try:
        args = yaml.safe_load(f"[{inner}]")
    except yaml.YAMLError as exc:
        raise bad(f"{kind}(...): its values do not parse ({str(exc).splitlines()[0]})") from None
    if kind == "choice":
        if not args:
            raise bad("choice() needs at least one value")
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
    from seqcli.recipe.load import parse_yaml

    file = Path(path)
    if not file.is_file():
        raise SeqcliError(f"--space: {path}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SeqcliError(f"--space: {path}: not valid UTF-8") from None
    node, data = parse_yaml(text, path)
    if not isinstance(data, dict) or not data:
        raise RecipeError([f"{path}: a space file maps recipe keys to distributions, e.g. "
                           f"'train.optimizer.lr: loguniform(1e-4, 1e-2)'"])
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
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
    """What a sweep searches, stored in its folder as sweep.yaml."""

    recipe: str
    overrides: list
    params: list  # of Param as dicts
    trials: int
    metric: str = "loss"
    maximize: bool = False
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    study: str = "sweep"
    seed: int = 0
    parallel: int = 1
    threads: int | None = None

    @property
    def space(self) -> list[Param]:
        return [Param(**p) for p in self.params]

    def storage_url(self, folder: Path) -> str:
        return self.storage or f"sqlite:///{(folder / 'study.db').resolve()}"

    def save(self, folder: Path) -> None:
        from seqcli.inference import write_text

        write_text(folder / SWEEP_FILE, yaml.safe_dump(asdict(self), sort_keys=False, allow_unicode=True))

    @classmethod
    def load(cls, folder: Path) -> Spec:
        path = Path(folder) / SWEEP_FILE
        if not path.is_file():
            raise SeqcliError(f"{folder}: not a sweep folder (no {SWEEP_FILE})")
        try:
            return cls(**yaml.safe_load(path.read_text(encoding="utf-8")))
        except (TypeError, yaml.YAMLError) as exc:
            raise SeqcliError(f"{path}: damaged ({str(exc).splitlines()[0]})") from None


def open_study(spec: Spec, folder: Path, create: bool, worker: int = 0):
    """The study, with the spec's sampler and pruner; an unreachable storage is one line."""
    optuna = require_optuna()
    seed = spec.seed + 7919 * worker  # each worker its own stream of suggestions
    if spec.sampler == "grid":
        sampler = optuna.samplers.GridSampler({p.key: p.grid() for p in spec.space}, seed=seed)
    elif spec.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
              "hyperband": lambda: optuna.pruners.HyperbandPruner(),
              "none": lambda: optuna.pruners.NopPruner()}[spec.pruner]()
    url = spec.storage_url(folder)
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_options(url))
        if create:
            return optuna.create_study(storage=storage, study_name=spec.study, sampler=sampler, pruner=pruner,
                                       direction="maximize" if spec.maximize else "minimize", load_if_exists=True)
        return optuna.load_study(storage=storage, study_name=spec.study, sampler=sampler, pruner=pruner)
    except ImportError as exc:
        raise SeqcliError(f"--storage {url}: a driver is missing ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's and optuna's errors, in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeqcliError(f"--storage {url}: cannot use it ({first})") from None


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # several workers write to one file
    return {"pool_pre_ping": True}


def lock_path(spec: Spec, folder: Path) -> Path:
    """Workers of one folder, or of any folders sharing one SQLite file, take the same lock
    (workers on other machines sharing a server database each take their own: the study may
    then get up to one extra trial per machine)."""
    url = spec.storage_url(folder)
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///") + ".seqcli-lock")
    return folder / ".sweep.lock"


@contextlib.contextmanager
def locked(path: Path):
    """Hold the lock on `path` for the block (released by the OS if the process dies)."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sweep_lock(folder: Path):
    """Trials are asked for one worker at a time, so their count is exact."""
    return locked(lock_path(Spec.load(folder), folder))


def trial_dir(folder: Path, number: int) -> Path:
    return folder / f"trial-{number:04d}"


def trial_lock(folder: Path, number: int) -> Path:
    return folder / f".trial-{number:04d}.lock"


def is_held(path: Path) -> bool:
    """Whether a live process holds the lock on `path` (the OS frees it when a process dies)."""
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


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
    import json

    values = []
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            value = record.get(metric)
            if record.get("split") == "valid" and isinstance(value, (int, float)) and math.isfinite(value):
                values.append(float(value))
    if not values:
        return None
    return max(values) if maximize else min(values)


def run_trial(spec: Spec, folder: Path, study, trial, console, resume: bool = False) -> str:
    """Train one trial's run folder (or resume it); tell the study how it ended."""
    optuna = require_optuna()
    from seqcli import runs
    from seqcli.recipe.resolve import load_recipe

    space = spec.space
    run_dir = trial_dir(folder, trial.number)
    if resume:
        stored = trial.params
        values = {p.key: p.args[stored[p.key]] if p.kind == "choice" else stored[p.key] for p in space}
    else:
        values = {p.key: p.suggest(trial) for p in space}
    overrides = spec.overrides + [f"{k}={dump(v)}" for k, v in values.items()]
    if spec.threads:
        overrides.append(f"train.threads={spec.threads}")
    reporter = Reporter(trial, spec.metric, optuna)
    from rich.console import Console

    quiet = Console(quiet=True)  # a trial's own progress stays in its run folder; the sweep prints a line
    state, note = "complete", ""
    try:
        if resume and (run_dir / "recipe.yaml").is_file():
            runs.resume(run_dir, None, [], False, quiet, on_evaluation=reporter)
        else:
            if resume and run_dir.exists():
                shutil.rmtree(run_dir)  # killed before it wrote anything worth keeping
            runs.train(load_recipe(spec.recipe, overrides), run_dir, quiet, on_evaluation=reporter)
    except Pruned as exc:
        state, note = "pruned", f" at step {exc.step}"
    except SeqcliError as exc:
        if getattr(exc, "label", "") == "stopped":  # Ctrl-C: the trial stays running, for `sweep resume`
            raise
        state, note = "failed", f": {exc}"
    value = trial_value(run_dir, spec.metric, spec.maximize)
    if state == "complete" and value is None:
        state, note = "failed", ": no finite validation value"
    with sweep_lock(folder):
        if state == "complete":
            study.tell(trial, value)
        elif state == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        best = _best(study)
        if best is not None and best.number == trial.number:
            shutil.copyfile(run_dir / "recipe.yaml", folder / "best.yaml")
    shown = ", ".join(f"{k.rpartition('.')[2]} {_short(v)}" for k, v in values.items())
    measured = f"{spec.metric} {value:.4f}" if value is not None else "no value"
    best_text = f"best: trial {best.number} ({best.value:.4f})" if best is not None else "best: none yet"
    console.print(f"trial {trial.number} {state}{note}: {measured} ({shown}); {best_text}", highlight=False,
                  markup=False)
    return state


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else dump(value)


def _best(study):
    try:
        return study.best_trial
    except ValueError:
        return None


def work(folder: Path, console, worker: int = 0) -> None:
    """A worker: finish trials a stopped sweep left running, then take new ones until the
    study has `trials` of them. Each trial is taken under the sweep lock and worked on
    holding its own lock, so no trial is taken twice and a dead worker's trial is seen."""
    optuna = require_optuna()
    spec = Spec.load(folder)
    study = open_study(spec, folder, create=False, worker=worker)
    running = optuna.trial.TrialState.RUNNING
    while True:
        with contextlib.ExitStack() as stack:
            with sweep_lock(folder):
                trials = study.get_trials(deepcopy=False)
                here = str(folder.resolve())
                orphan = next((t for t in trials if t.state == running and t.user_attrs.get("folder") == here
                               and not is_held(trial_lock(folder, t.number))), None)
                if orphan is not None:
                    trial = optuna.trial.Trial(study, orphan._trial_id)
                    resume = set(orphan.params) == {p.key for p in spec.space}
                elif sum(1 for t in trials if not t.user_attrs.get("replaced")) < spec.trials:
                    trial, resume = study.ask(), False
                    trial.set_user_attr("folder", here)
                else:
                    return
                stack.enter_context(locked(trial_lock(folder, trial.number)))
            if orphan is not None and not resume:  # stopped before its values were chosen: replaced
                with sweep_lock(folder):
                    trial.set_user_attr("replaced", True)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            if orphan is not None:
                console.print(f"trial {trial.number}: left running by a stopped sweep; resuming it", highlight=False)
            run_trial(spec, folder, study, trial, console, resume=resume)


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
