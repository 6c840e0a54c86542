from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, console, guard, print_table


@guard
def sweep(
    target: str = typer.Argument(..., help="A recipe (file or bundled name); or `resume DIR`, `show DIR`."),
    arguments: Optional[List[str]] = typer.Argument(None, help="key=value overrides, and key=distribution(...) to search: uniform, loguniform, int, logint, choice."),
    space: Optional[str] = typer.Option(None, "--space", help="A YAML file of recipe keys and distributions."),
    trials: int = typer.Option(20, "--trials", min=1, max=100_000, help="Trials in all (finished, pruned or failed)."),
    parallel: int = typer.Option(1, "--parallel", min=1, max=256, help="Trials at once on this machine, each with its share of the cores."),
    out: Optional[str] = typer.Option(None, "--out", help="The sweep folder (default: sweeps/RECIPE-TIME)."),
    storage: Optional[str] = typer.Option(None, "--storage", help="A database URL Optuna supports, to share the study between machines (default: OUT/study.db)."),
    study: str = typer.Option("sweep", "--study", help="The study's name in the storage."),
    metric: str = typer.Option("loss", "--metric", help="The validation metric to optimise."),
    maximize: Optional[bool] = typer.Option(None, "--maximize/--minimize", help="Whether higher values of --metric are better (default: as the task declares it: accuracy, bleu higher; loss, perplexity lower)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, random or grid."),
    pruner: str = typer.Option("median", "--pruner", help="median, hyperband or none."),
    folds: Optional[int] = typer.Option(None, "--folds", min=2, max=100, help="Cross-validate each trial on K folds; its value is their mean (pruned on the first)."),
    pruner_warmup: int = typer.Option(3, "--pruner-warmup", min=1, max=100_000, help="No trial is pruned before its Nth evaluation."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="The sampler's seed."),
    threads: Optional[int] = THREADS,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="show: draw the history, importances and parallel coordinates here (PNG)."),
    force: bool = typer.Option(False, "--force", help="show: replace --output if it exists."),
    worker: Optional[int] = typer.Option(None, "--worker", hidden=True),
):
    """Search hyperparameters with Optuna; every trial is an ordinary run folder.

    \b
    seqcli sweep RECIPE [key=value ...] [key=loguniform(1e-4, 1e-2) ...] [--space FILE]
    seqcli sweep resume DIR    finish what a stopped sweep left (finished trials are kept)
    seqcli sweep show DIR      the trials, the best, each key's importance (-o: a picture)
    """
    from pathlib import Path

    from seqcli import sweep as S
    from seqcli.errors import SeqcliError

    arguments = list(arguments or [])
    out_console = console()
    if worker is not None:  # one of --parallel's processes
        S.work(Path(target), out_console, threads)
        return
    if target in ("resume", "show"):
        if len(arguments) != 1:
            raise SeqcliError(f"seqcli sweep {target} DIR: give one sweep folder")
        folder = Path(arguments[0])
        if target == "resume":
            S.resume(folder, out_console, parallel, threads)
        show(S.report(folder), output if target == "show" else None, force)
        return
    settings = S.Settings(trials=trials, parallel=parallel, out=out, storage=storage, study=study, metric=metric,
                          maximize=maximize, sampler=sampler, pruner=pruner,
                          pruner_warmup=pruner_warmup, folds=folds, seed=seed, threads=threads, space=space)
    show(S.report(S.start(target, arguments, settings, out_console)), None, False)


def show(report, output: str | None, force: bool) -> None:
    """A sweep's trials as a table, its best trial and importances; `output`: a picture."""
    from rich.table import Table
    from rich.text import Text

    spec, trials, best = report.spec, report.trials, report.best
    keys = [p.key for p in spec.space]
    table = Table(title=f"{report.folder}: {len(trials)} of {spec.trials} trials, valid {spec.metric} "
                        f"({'higher' if spec.maximize else 'lower'} is better)")
    for column in ["trial", "state", spec.metric, "steps"] + [k.rpartition(".")[2] for k in keys] + ["seconds"]:
        table.add_column(column, justify="right" if column not in ("state",) else "left")
    for t in trials:
        seconds = f"{t.duration.total_seconds():.0f}" if t.duration is not None else ""
        steps = str(t.last_step) if t.last_step is not None else ""
        value = f"{t.value:.4f}" if t.value is not None else ""
        mark = " *" if best is not None and t.number == best.number else ""
        table.add_row(*(Text(c) for c in [f"{t.number}{mark}", t.state.name.lower(), value, steps,
                                           *report.values(t), seconds]))
    print_table(table)
    out = console()
    out.print(Text(", ".join(f"{k} {n}" for k, n in report.counts().items())))
    if best is not None:
        out.print(Text(f"best: trial {best.number}, valid {spec.metric} {best.value:.4f}; its recipe: "
                       f"{report.folder / 'best.yaml'} (train it longer: seqcli run {report.folder / 'best.yaml'} "
                       f"train.max_steps=N)"))
    if report.importance:
        out.print(Text("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in report.importance.items())))
    if output is not None:
        from seqcli import plots

        path = plots.output_file(output, force, "--output")
        plots.sweep_history(report, path)
        out.print(Text(f"wrote {path}"))
