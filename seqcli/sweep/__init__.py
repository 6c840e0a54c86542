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

The entry points: `start` (a new sweep), `resume` (finish a stopped one), `report` (what a
sweep folder holds, for `seqcli sweep show`), and `work` (one `--parallel` worker). Inside:
`space` (the searched keys), `study` (the spec, the study, the locks), `worker` (the trials).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from seqcli.errors import SeqcliError
from seqcli.sweep.space import KINDS, MAX_CHOICES, MAX_GRID, Param, check_space, dump, parse, read_space, split_arguments
from seqcli.sweep.study import (PRUNERS, SAMPLERS, SWEEP_FILE, Spec, importances, is_held, lock_path, locked,
                                open_study, require_optuna, storage_url, summary, sweep_lock, sync_best, trial_dir,
                                trial_lock)
from seqcli.sweep.worker import run_trial, trial_value, work

__all__ = ["KINDS", "MAX_CHOICES", "PRUNERS", "SAMPLERS", "SWEEP_FILE", "Param", "Report", "Settings", "Spec",
           "check_space", "dump", "importances", "is_held", "lock_path", "locked", "open_study", "parse", "read_space",
           "report", "require_optuna", "resume", "run_trial", "split_arguments", "start", "storage_url", "summary",
           "sweep_lock", "sync_best", "trial_dir", "trial_lock", "trial_value", "work"]


@dataclass
class Settings:
    """How a new sweep searches (the options of `seqcli sweep RECIPE`)."""

    trials: int = 20
    parallel: int = 1
    out: str | None = None
    storage: str | None = None
    study: str = "sweep"
    metric: str = "loss"
    maximize: bool | None = None  # None: the direction the task declares for `metric`
    sampler: str = "tpe"
    pruner: str = "median"
    pruner_warmup: int = 3
    folds: int | None = None
    seed: int = 0
    threads: int | None = None
    space: str | None = None  # a space file


def start(target: str, arguments: list[str], settings: Settings, console) -> Path:
    """A new sweep of the recipe `target` (a file or a bundled name) over the searched keys in
    `arguments` (`key=kind(...)`, beside plain `key=value` overrides) and the space file:
    checked whole, its folder made, its trials run. The sweep folder."""
    require_optuna()
    if settings.sampler not in SAMPLERS:
        raise SeqcliError(f"--sampler {settings.sampler}: one of {', '.join(SAMPLERS)}")
    if settings.pruner not in PRUNERS:
        raise SeqcliError(f"--pruner {settings.pruner}: one of {', '.join(PRUNERS)}")
    overrides, params = split_arguments(list(arguments))
    if settings.space is not None:
        params += read_space(settings.space)
    from seqcli.recipe.resolve import load_recipe

    recipe = load_recipe(target, overrides)
    if settings.folds and recipe.folds and recipe.folds.get("fold") is not None:
        raise SeqcliError(f"--folds: the recipe sets dataset.fold ({recipe.folds['fold']}); remove it to "
                          f"cross-validate every trial")
    check_space(target, overrides, params)
    if settings.maximize is None:
        settings.maximize = maximizes(recipe, settings.metric)
    if settings.sampler == "grid":
        points = 1
        for p in params:
            try:
                points *= len(p.grid())
            except Exception as exc:  # noqa: BLE001 - ConfigError, said with where the key was given
                raise SeqcliError(f"{p.origin}: {exc}") from None
        if points > MAX_GRID:
            raise SeqcliError(f"--sampler grid: the space has {points:,} points; a grid search takes at most "
                              f"{MAX_GRID:,} (search fewer values, or sample it: --sampler tpe or random)")
    folder = Path(settings.out) if settings.out else default_folder(target)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SeqcliError(f"--out {folder}: exists and is not empty; continue it with: seqcli sweep resume {folder}")
    spec = Spec(recipe=str(Path(target).resolve()) if Path(target).is_file() else target, overrides=overrides,
                params=[asdict(p) for p in params], trials=settings.trials, metric=settings.metric,
                maximize=settings.maximize, sampler=settings.sampler, pruner=settings.pruner,
                pruner_warmup=settings.pruner_warmup, folds=settings.folds, storage=storage_url(settings.storage), study=settings.study, seed=settings.seed,
                parallel=settings.parallel, threads=settings.threads)
    database = spec.sqlite_file(folder)
    if database is not None and spec.storage and not database.parent.is_dir():
        raise SeqcliError(f"--storage {settings.storage}: cannot use it (no folder {database.parent})")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with locked(lock_path(spec, folder)):  # two sweeps creating one SQLite study
            open_study(spec, folder, create=True)
    except SeqcliError:
        shutil.rmtree(folder, ignore_errors=True)  # made just now, and empty
        raise
    spec.save(folder)
    what = ", ".join(f"{p.key} {p.kind}{tuple(p.args)}" for p in params)
    console.print(f"sweep {folder}: {settings.trials} trials of {recipe.source} over {what}; "
                  f"{'maximising' if settings.maximize else 'minimising'} valid {settings.metric} "
                  f"({settings.sampler}, pruner {settings.pruner}"
                  f"{f' from evaluation {settings.pruner_warmup}' if settings.pruner != 'none' else ''}"
                  f"{f'; each trial the mean of {settings.folds} folds' if settings.folds else ''})", highlight=False, markup=False)
    run_workers(folder, spec, console)
    return folder


def resume(folder: Path, console, parallel: int = 1, threads: int | None = None) -> None:
    """Finish what a stopped sweep left: trials left running are resumed, then new ones are
    taken until the study has its trials; `parallel` and `threads` may change."""
    folder = Path(folder)
    spec = Spec.load(folder)
    require_optuna()
    open_study(spec, folder, create=False)
    if parallel != 1 or threads:
        spec.parallel, spec.threads = parallel, threads or spec.threads
        spec.save(folder)
    run_workers(folder, spec, console)


def maximizes(recipe, metric: str) -> bool:
    """Whether higher values of `metric` are better, as the recipe's task declares it."""
    from seqcli import build
    from seqcli.metrics import HIGHER

    direction = build.plugin_class("task", recipe).direction(metric)
    if direction is None:
        raise SeqcliError(f"--metric {metric}: the {recipe.task.name} task does not say whether higher or lower is "
                          f"better; pass --maximize or --minimize")
    return direction == HIGHER


def default_folder(recipe: str) -> Path:
    stem = Path(recipe).stem if recipe.endswith((".yaml", ".yml")) else recipe.replace(":", "-")
    return Path("sweeps") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_workers(folder: Path, spec: Spec, console) -> None:
    """One worker in this process, or `spec.parallel` worker processes sharing the cores."""
    if spec.parallel == 1:
        try:
            work(folder, console)
        except SeqcliError as exc:
            if getattr(exc, "label", "") != "stopped":  # Ctrl-C: the trial saved a checkpoint
                raise
            exc.args = (f"{str(exc).split('; continue with')[0]}; continue the sweep with: "
                        f"seqcli sweep resume {folder}",)
            raise
        return
    from seqcli.train.threads import cores

    threads = spec.threads or max(1, cores() // spec.parallel)  # the cores shared among the workers
    procs = [subprocess.Popen([sys.executable, "-m", "seqcli", "sweep", str(folder), "--worker", str(i), "--threads",
                               str(threads)]) for i in range(spec.parallel)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.wait()
        raise SeqcliError(f"stopped; continue with: seqcli sweep resume {folder}") from None
    if any(codes):
        raise SeqcliError(f"a worker failed (exit codes {codes}); continue with: seqcli sweep resume {folder}")


@dataclass
class Report:
    """What a sweep folder holds: its spec, its trials (Optuna's FrozenTrials), the best one
    (best.yaml made to agree with it) and each searched key's importance."""

    folder: Path
    spec: Spec
    trials: list
    best: object = None
    importance: dict = field(default_factory=dict)

    def values(self, trial) -> list[str]:
        """A trial's searched values as the user wrote them ('' for a key it never got)."""
        space = {p.key: p for p in self.spec.space}
        out = []
        for key in space:
            if key not in trial.params:
                out.append("")
            elif space[key].kind == "choice":
                out.append(dump(space[key].args[trial.params[key]]))
            else:
                value = trial.params[key]
                out.append(f"{value:.4g}" if isinstance(value, float) else dump(value))
        return out

    def counts(self) -> dict[str, int]:
        states = [t.state.name.lower() for t in self.trials]
        return {"finished": states.count("complete"), "pruned": states.count("pruned"),
                "failed": states.count("fail"), "running": states.count("running")}


def report(folder: Path) -> Report:
    folder = Path(folder)
    spec, study = summary(folder)
    with sweep_lock(folder):
        best = sync_best(folder, study)  # best.yaml agrees with the study, whatever a kill left
    return Report(folder, spec, study.get_trials(deepcopy=False), best, importances(study))
