from __future__ import annotations

import json
from typing import Optional

import typer

from seqcli.cli.common import THREADS, console, guard


@guard
def evaluate(
    ctx: typer.Context,
    checkpoint: Optional[str] = typer.Argument(None, help="A run directory or a checkpoint file (several, first: an ensemble).", show_default=False),
    split: str = typer.Option("test", "--split", help="Which split of the recipe's dataset."),
    file: Optional[str] = typer.Option(None, "--file", help="Score a file in the dataset's format instead of a split."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
    threads: Optional[int] = THREADS,
    show_help: bool = typer.Option(False, "--help", "-h", help="Show this message; with a run, its task's options too."),
):
    """Score a checkpoint on a split of its dataset (re-read from the recipe stored in it);
    several (seqcli evaluate RUN1 RUN2 ...) are scored as one ensemble.

    A task may declare options of its own (`seqcli evaluate RUN --help` lists them)."""
    from seqcli import inference
    from seqcli.cli import options as task_options
    from seqcli.cli.sample import more_runs, open_run, print_task_options
    from seqcli.errors import ConfigError, SeqcliError

    ckpt, task_cls = open_run(ctx, checkpoint, which, show_help, "evaluate")
    params = inference.evaluate_parameters(task_cls)
    if show_help:
        typer.echo(ctx.get_help())
        if params:
            print_task_options(f"Options of the {ckpt.recipe.task.name} task's evaluation", task_cls.evaluate, params, {})
        raise typer.Exit()
    more, args = more_runs(list(ctx.args), which)
    given = task_options.parse(args, params, ckpt.recipe.task.name)
    from seqcli.train.threads import use_threads

    use_threads(threads)
    loaded = inference.from_checkpoints([ckpt, *more], device)
    try:
        metrics = loaded.evaluate(split=split, file=file, **given)
    except ConfigError as exc:
        raise SeqcliError(f"{task_options.flag(exc.key)}: {exc.message}") from None
    members = [ckpt, *more]
    if as_json:
        shown = ({"checkpoint": ckpt.path, "step": ckpt.step} if not more else
                 {"ensemble": [c.path for c in members], "steps": [c.step for c in members]})
        typer.echo(json.dumps({**shown, "split": file or split, **metrics}))
        return
    from rich.table import Table
    from rich.text import Text

    title = f"step {ckpt.step}" if not more else f"ensemble of {len(members)} (steps {', '.join(str(c.step) for c in members)})"
    table = Table(title=f"{title}, {file or split}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    notes = {k: v for k, v in metrics.items() if isinstance(v, str)}
    for k, v in metrics.items():
        if k not in notes:
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    out = console()
    out.print(table)
    for k, v in notes.items():  # sacrebleu's signatures, how references were counted
        out.print(Text(f"{k}: {v}"))
