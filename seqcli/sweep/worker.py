"""A sweep's worker: takes trials from the study and trains each as an ordinary run folder."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path

from seqcli.errors import SeqcliError
from seqcli import runfolder
from seqcli.runfolder import RunFolder
from seqcli.sweep.space import _short, dump
from seqcli.sweep.study import (Spec, _replace, is_held, locked, open_study, require_optuna, sampler_for, sweep_lock,
                                sync_best, trial_dir, trial_lock, trial_seed)

class Reporter:
    """After each evaluation: report the metric to the trial; stop the run if pruned, but
    never before its `warmup`-th evaluation (a slow starter gets that many)."""

    def __init__(self, trial, metric: str, optuna, warmup: int = 0):
        self.trial, self.metric, self.optuna, self.warmup = trial, metric, optuna, warmup
        self.pruned_at: int | None = None
        self.evaluations = 0

    def __call__(self, step: int, metrics: dict) -> None:
        if self.metric not in metrics:
            raise SeqcliError(f"--metric {self.metric}: the task reports {', '.join(k for k, v in metrics.items() if not isinstance(v, str))}")
        value = float(metrics[self.metric])
        if not math.isfinite(value):
            return
        self.trial.report(value, step)
        self.evaluations += 1
        if self.evaluations >= self.warmup and self.trial.should_prune():
            self.pruned_at = step
            raise Pruned(step)


class Pruned(SeqcliError):
    def __init__(self, step: int):
        super().__init__(f"pruned at step {step}")
        self.step = step


def trial_value(run_dir: Path, metric: str, maximize: bool, folds: int | None = None) -> float | None:
    """The best validation value of `metric` the run recorded; of a cross-validated trial, the
    mean of its folds' (or, stopped before the end, its first fold's best)."""
    if folds:
        summary = Path(run_dir) / runfolder.FOLDS
        if summary.is_file():
            value = json.loads(summary.read_text(encoding="utf-8"))["valid"].get(metric, {}).get("mean")
            return value if isinstance(value, float) and math.isfinite(value) else None
        run_dir = runfolder.fold(run_dir, 1)
    values = [float(r[metric]) for r in RunFolder(run_dir).validation_records()
              if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if not values:
        return None
    return max(values) if maximize else min(values)


def run_trial(spec: Spec, folder: Path, study, trial, values: dict, console, resume: bool = False) -> str:
    """Train one trial's run folder with its `values` (or resume it); tell the study how it
    ended. Whatever the trial does (fails, diverges, reports NaN, raises), the worker goes on."""
    optuna = require_optuna()
    from seqcli import crossval, runs
    from seqcli.recipe.resolve import load_recipe

    run_dir = trial_dir(folder, trial.number)
    overrides = spec.overrides + [f"{k}={dump(v)}" for k, v in values.items()]
    reporter = Reporter(trial, spec.metric, optuna, spec.pruner_warmup)
    from rich.console import Console

    quiet = Console(quiet=True)  # a trial's own progress stays in its run folder; the sweep prints a line
    state, note = "complete", ""
    try:
        if spec.folds:  # the trial's folder holds a run folder per fold
            recipe = load_recipe(spec.recipe, overrides)
            recipe.train.threads = spec.threads or recipe.train.threads
            recipe.folds = {"folds": spec.folds, "fold": None}
            run_dir.mkdir(parents=True, exist_ok=True)
            crossval.cross_validate(recipe, run_dir, quiet, again=resume, on_evaluation=reporter)
        elif resume and RunFolder(run_dir).recipe.is_file():
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
    value = trial_value(run_dir, spec.metric, spec.maximize, spec.folds)
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
