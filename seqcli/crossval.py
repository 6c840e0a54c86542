"""Cross-validation: `seqcli run RECIPE --folds K` trains every fold in a run folder of its
own under one folder, and writes their mean and spread (folds.json)."""

from __future__ import annotations

import copy
from pathlib import Path

from rich.console import Console

from seqcli import runfolder, runs
from seqcli.errors import CheckpointError
from seqcli.recipe.resolve import Recipe
from seqcli.runfolder import RunFolder


def cross_validation(recipe: Recipe, run_dir: str | None, again: bool, console: Console) -> dict:
    """`seqcli run RECIPE --folds K [--run-dir DIR] [--resume]`: the folder chosen (never an
    existing one unless `again`), the folds trained, the summary printed where it is written."""
    if again:
        base = Path(run_dir)
        if not base.is_dir():
            raise CheckpointError(f"{base}: no such cross-validation folder to resume")
    else:
        base = runs.choose_run_dir(run_dir, recipe)
    made = not base.exists()
    base.mkdir(parents=True, exist_ok=True)
    try:
        summary = cross_validate(recipe, base, console, again)
    except BaseException:
        if made and not any(base.iterdir()):  # refused before any fold started: nothing left behind
            base.rmdir()
        raise
    console.print(f"{summary['folds']} folds trained in {base}; their mean and spread in {base / runfolder.FOLDS}",
                  highlight=False)
    return summary


def cross_validate(recipe: Recipe, base: Path, console: Console, again: bool = False, on_evaluation=None) -> dict:
    """`seqcli run RECIPE --folds K`: every fold of `recipe.folds` trained in its own run
    folder under `base`, one after the other; with `again`, folds already trained are kept,
    a stopped one is resumed and the rest are trained. The summary (written to folds.json):
    each validation metric of each fold's best checkpoint, their mean and standard deviation.
    `on_evaluation` (a sweep's pruning) sees the first fold's evaluations."""
    from seqcli.train import checkpoint as ckpt_io

    k = recipe.folds["folds"]
    for number in range(1, k + 1):
        one = copy.deepcopy(recipe)
        one.folds = {"folds": k, "fold": number}
        where = runfolder.fold(base, number)
        console.rule(f"fold {number} of {k}: {where}")
        told = on_evaluation if number == 1 else None
        if again and RunFolder(where).checkpoint("last").exists():
            if runs.finished(runs.last_checkpoint(where), one.train) is None:
                runs.resume(where, one, [], False, console, told)
            continue
        runs.start(one, runfolder.choose(str(where), "", one.to_yaml()), console, told)
    best = [ckpt_io.load(runfolder.fold(base, n), "best") for n in range(1, k + 1)]
    names = [m for m, v in best[0].metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    metrics = {}
    for name in names:
        values = [float(c.metrics[name]) for c in best if isinstance(c.metrics.get(name), (int, float))]
        mean = sum(values) / len(values)
        metrics[name] = {"mean": mean, "std": (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5,
                         "folds": values}
    scheme = "forward-chaining" if "forward" in str(best[0].data_info.get("fold", "")) else "shuffled"
    summary = {"folds": k, "scheme": scheme, "recipe": recipe.source, "steps": [c.step for c in best], "valid": metrics}
    runfolder.write_folds(base, summary)
    return summary
