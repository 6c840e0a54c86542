from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, console, guard


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
    maximize: bool = typer.Option(False, "--maximize", help="Higher is better (default: lower)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, random or grid."),
    pruner: str = typer.Option("median", "--pruner", help="median, hyperband or none."),
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
        if target == "show":
            show(folder, output, force)
            return
        spec = S.Spec.load(folder)
        S.require_optuna()
        S.open_study(spec, folder, create=False)
        if parallel != 1 or threads:
            spec.parallel, spec.threads = parallel, threads or spec.threads
            spec.save(folder)
        run_workers(folder, spec, out_console)
        show(folder, None, False)
        return
    S.require_optuna()
    if sampler not in S.SAMPLERS:
        raise SeqcliError(f"--sampler {sampler}: one of {', '.join(S.SAMPLERS)}")
    if pruner not in S.PRUNERS:
        raise SeqcliError(f"--pruner {pruner}: one of {', '.join(S.PRUNERS)}")
    overrides, params = S.split_arguments(arguments)
    if space is not None:
        params += S.read_space(space)
    from seqcli.recipe.resolve import load_recipe

    recipe = load_recipe(target, overrides)
    S.check_space(target, overrides, params)
    if sampler == "grid":
        for p in params:
            try:
                p.grid()
            except Exception as exc:
                raise SeqcliError(f"{p.origin}: {exc}") from None
    folder = Path(out) if out else choose_folder(target)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SeqcliError(f"--out {folder}: exists and is not empty; continue it with: seqcli sweep resume {folder}")
    spec = S.Spec(recipe=str(Path(target).resolve()) if Path(target).is_file() else target, overrides=overrides,
                  params=[S.asdict(p) for p in params], trials=trials, metric=metric, maximize=maximize,
                  sampler=sampler, pruner=pruner, storage=S.storage_url(storage), study=study, seed=seed,
                  parallel=parallel, threads=threads)
    database = spec.sqlite_file(folder)
    if database is not None and spec.storage and not database.parent.is_dir():
        raise SeqcliError(f"--storage {storage}: cannot use it (no folder {database.parent})")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with S.locked(S.lock_path(spec, folder)):  # two sweeps creating one SQLite study
            S.open_study(spec, folder, create=True)
    except SeqcliError:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise
    spec.save(folder)
    what = ", ".join(f"{p.key} {p.kind}{tuple(p.args)}" for p in params)
    out_console.print(f"sweep {folder}: {trials} trials of {recipe.source} over {what}; "
                      f"{'maximising' if maximize else 'minimising'} valid {metric} ({sampler}, pruner {pruner})",
                      highlight=False, markup=False)
    run_workers(folder, spec, out_console)
    show(folder, None, False)


def choose_folder(recipe: str):
    import time
    from pathlib import Path

    stem = Path(recipe).stem if recipe.endswith((".yaml", ".yml")) else recipe.replace(":", "-")
    return Path("sweeps") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_workers(folder, spec, out_console) -> None:
    """One worker in this process, or --parallel worker processes sharing the cores."""
    import subprocess
    import sys

    from seqcli import sweep as S
    from seqcli.errors import SeqcliError

    if spec.parallel == 1:
        try:
            S.work(folder, out_console)
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


def show(folder, output: str | None, force: bool) -> None:
    from pathlib import Path

    from rich.table import Table
    from rich.text import Text

    from seqcli import sweep as S

    folder = Path(folder)
    spec, study = S.summary(folder)
    with S.sweep_lock(folder):
        best = S.sync_best(folder, study)  # best.yaml agrees with the study, whatever a kill left
    trials = study.get_trials(deepcopy=False)
    keys = [p["key"] for p in spec.params]
    table = Table(title=f"{folder}: {len(trials)} of {spec.trials} trials, valid {spec.metric} "
                        f"({'higher' if spec.maximize else 'lower'} is better)")
    for column in ["trial", "state", spec.metric, "steps"] + [k.rpartition(".")[2] for k in keys] + ["seconds"]:
        table.add_column(column, justify="right" if column not in ("state",) else "left")
    space = {p["key"]: S.Param(**p) for p in spec.params}
    for t in trials:
        values = []
        for k in keys:
            if k not in t.params:
                values.append("")
            elif space[k].kind == "choice":
                values.append(S.dump(space[k].args[t.params[k]]))
            else:
                values.append(S._short(t.params[k]))
        seconds = f"{t.duration.total_seconds():.0f}" if t.duration is not None else ""
        steps = str(t.last_step) if t.last_step is not None else ""
        value = f"{t.value:.4f}" if t.value is not None else ""
        mark = " *" if best is not None and t.number == best.number else ""
        table.add_row(*(Text(c) for c in [f"{t.number}{mark}", t.state.name.lower(), value, steps, *values, seconds]))
    import sys

    from rich.console import Console

    out = console() if sys.stdout.isatty() else Console(highlight=False, width=100_000)  # whole rows in a pipe
    out.print(table)
    states = [t.state.name.lower() for t in trials]
    out.print(Text(f"finished {states.count('complete')}, pruned {states.count('pruned')}, "
                   f"failed {states.count('fail')}, running {states.count('running')}"))
    if best is not None:
        out.print(Text(f"best: trial {best.number}, valid {spec.metric} {best.value:.4f}; its recipe: "
                       f"{folder / 'best.yaml'} (train it longer: seqcli run {folder / 'best.yaml'} train.max_steps=N)"))
    importance = S.importances(study)
    if importance:
        out.print(Text("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in importance.items())))
    if output is not None:
        from seqcli import plots

        path = plots.output_file(output, force, "--output")
        draw(path, spec, trials, importance)
        out.print(Text(f"wrote {path}"))


def draw(path, spec, trials, importance: dict) -> None:
    """Optimisation history, parameter importance and parallel coordinates, side by side."""
    from seqcli import plots
    from seqcli import sweep as S

    plt = plots.pyplot()
    done = [t for t in trials if t.value is not None]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    xs = [t.number for t in done]
    ys = [t.value for t in done]
    ax.scatter(xs, ys, s=14, label="trial")
    running, best = [], None
    for y in ys:
        best = y if best is None else (max(best, y) if spec.maximize else min(best, y))
        running.append(best)
    ax.plot(xs, running, color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"valid {spec.metric}")
    ax.set_title("optimisation history")
    ax.legend()
    ax = axes[1]
    names = list(importance)[::-1]
    ax.barh([n.rpartition(".")[2] for n in names], [importance[n] for n in names])
    ax.set_title("importance")
    ax = axes[2]
    keys = [p["key"] for p in spec.params]
    space = {p["key"]: S.Param(**p) for p in spec.params}
    if done and keys:
        import math

        def position(key, value):
            p = space[key]
            if p.kind == "choice":
                return value / max(1, len(p.args) - 1)
            low, high = p.args
            if p.kind in ("loguniform", "logint"):
                return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
            return (value - low) / (high - low)

        low, high = min(ys), max(ys)
        cmap = plt.get_cmap("viridis_r" if not spec.maximize else "viridis")
        for t in done:
            if all(k in t.params for k in keys):
                shade = (t.value - low) / (high - low) if high > low else 0.5
                ax.plot(range(len(keys)), [position(k, t.params[k]) for k in keys], color=cmap(shade), alpha=0.7)
        ax.set_xticks(range(len(keys)), [k.rpartition(".")[2] for k in keys])
        ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title("parallel coordinates (darker: better)")
    fig.tight_layout()
    plots.save(fig, path, dpi=100, bbox_inches=None)
