"""A sweep folder's study: its spec (sweep.yaml), the Optuna study it searches with, the
locks its workers share, and what the study knows (the best trial, the importances)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml

from seqcli.errors import RecipeError, SeqcliError
from seqcli.files import Lock
from seqcli import runfolder
from seqcli.runfolder import RunFolder
from seqcli.schema import Range, Seed
from seqcli.sweep.space import Param, dump, parse

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
    pruner_warmup: Annotated[int, Range(1, 100_000)] = 3  # no trial is pruned before this evaluation
    folds: Annotated[int, Range(2, 100)] | None = None  # each trial cross-validated; its value the folds' mean
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


def sync_best(folder: Path, study):
    """best.yaml is the best trial's recipe: rewritten from the study whenever it differs (a
    kill between the study's update and the copy leaves it stale only until the next worker
    or `sweep show`). Returns the best trial, or None."""
    from seqcli.files import write_atomic

    best = _best(study)
    if best is None:
        return None
    trial = trial_dir(Path(best.user_attrs.get("folder", folder)), best.number)
    try:
        text = best_recipe(trial)
        if not (folder / "best.yaml").is_file() or (folder / "best.yaml").read_bytes() != text:
            write_atomic(folder / "best.yaml", text)
    except OSError:  # the best trial's folder is on another machine, or gone
        pass
    return best


def best_recipe(trial: Path) -> bytes:
    """A trial's recipe; for a cross-validated trial, its first fold's without the folds (the
    recipe to train on all the data with)."""
    source = RunFolder(trial).recipe
    if source.is_file():
        return source.read_bytes()
    data = yaml.safe_load(RunFolder(runfolder.fold(trial, 1)).recipe.read_text(encoding="utf-8"))
    for key in ("folds", "fold"):
        data.get("dataset", {}).pop(key, None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _best(study):
    try:
        return study.best_trial
    except ValueError:
        return None


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
