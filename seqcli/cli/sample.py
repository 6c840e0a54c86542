from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, guard

TASK_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@guard
def sample(
    ctx: typer.Context,
    checkpoint: Optional[str] = typer.Argument(None, help="A run directory or a checkpoint file (several, first: an ensemble).", show_default=False),
    inputs: Optional[List[str]] = typer.Option(None, "--input", "-i", help="An input (repeat for several): text, a label, or numbers 'a b; c d'."),
    input_file: Optional[str] = typer.Option(None, "--input-file", help="One input per line ('-' for stdin)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the outputs here instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace --output, and pictures, if they exist."),
    resume: bool = typer.Option(False, "--continue", help="Append to --output after the inputs it already has outputs for."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=65536, help="Inputs decoded together (--input-file)."),
    as_json: bool = typer.Option(False, "--json", help="Each output as a line of JSON: input, text, hypotheses (output, score)."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
    threads: Optional[int] = THREADS,
    show_help: bool = typer.Option(False, "--help", "-h", help="Show this message; with a run, its task's options too."),
):
    """Generate, label, tag, translate or forecast with a trained model.

    Needs only the checkpoint: no recipe, no data. Conditional tasks take --input or
    --input-file and print one output per input line. Several runs (seqcli sample RUN1
    RUN2 ... [options]) decode as one ensemble: the mean of their probabilities. Every other option is the task's own
    (`seqcli sample RUN --help` lists those of RUN's task, with types and defaults); options
    not given take the values of the recipe's `sample:` section.
    """
    from seqcli import inference, predict
    from seqcli.api import INPUTS
    from seqcli.cli import options as task_options

    ckpt, task_cls = open_run(ctx, checkpoint, which, show_help, "sample")
    params = inference.sample_parameters(task_cls)
    if show_help:
        typer.echo(ctx.get_help())
        print_task_options(f"Options of the {ckpt.recipe.task.name} task (from {ckpt.path})", task_cls.sample, params,
                           ckpt.recipe.sample, skip=(INPUTS,))
        raise typer.Exit()
    more, args = more_runs(list(ctx.args), which)
    given = task_options.parse(args, {k: v for k, v in params.items() if k != INPUTS}, ckpt.recipe.task.name)
    request = predict.Request(given, inputs, input_file, output, force, resume, batch_size, as_json)
    text = predict.run([ckpt, *more], request, device, threads)
    if text is not None:
        typer.echo(text)


def more_runs(args: list[str], which: str) -> tuple[list, list[str]]:
    """`seqcli sample RUN1 RUN2 ... [options]`: the checkpoints after the first (an
    ensemble), loaded, and the task's options that follow them."""
    from seqcli.train import checkpoint as ckpt_io

    runs = []
    while args and not args[0].startswith("-"):
        runs.append(ckpt_io.load(args.pop(0), which))
    return runs, args


def open_run(ctx: typer.Context, checkpoint: str | None, which: str, show_help: bool, command: str):
    """The checkpoint a `sample` or `evaluate` command names, and its task class; without a
    run, `--help` shows the command's own options and exits."""
    from seqcli import inference
    from seqcli.errors import SeqcliError
    from seqcli.train import checkpoint as ckpt_io

    if checkpoint is None:
        if show_help:
            typer.echo(ctx.get_help())
            typer.echo(f"\nGive a run (seqcli {command} RUN --help) to see the options of its task.")
            raise typer.Exit()
        raise SeqcliError(f"give a run directory or a checkpoint file: seqcli {command} RUN [options]")
    ckpt = ckpt_io.load(checkpoint, which)
    return ckpt, inference.task_class(ckpt)


def print_task_options(title: str, method, params: dict, recipe_values: dict, skip=()) -> None:
    """A table of a task's options: flag, type, default (the recipe's value where it has one)."""
    import inspect

    from rich.table import Table

    from seqcli.cli.common import console
    from seqcli.cli.options import describe

    doc = inspect.getdoc(method) or ""
    table = Table(title=title, show_edge=False, box=None, pad_edge=False, title_justify="left")
    for column in ("option", "type", "default"):
        table.add_column(column)
    shown = {k: (h, recipe_values.get(k, d)) for k, (h, d) in params.items()}
    for row in describe(shown, skip):
        table.add_row(*row)
    out = console()
    out.print()
    out.print(table)
    if doc:
        out.print(doc, markup=False)
