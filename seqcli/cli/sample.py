from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, guard

TASK_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@guard
def sample(
    ctx: typer.Context,
    checkpoint: Optional[str] = typer.Argument(None, help="A run directory or a checkpoint file.", show_default=False),
    inputs: Optional[List[str]] = typer.Option(None, "--input", "-i", help="An input (repeat for several): text, a label, or numbers 'a b; c d'."),
    input_file: Optional[str] = typer.Option(None, "--input-file", help="One input per line ('-' for stdin)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the outputs here instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace --output, and pictures, if they exist."),
    resume: bool = typer.Option(False, "--continue", help="Append to --output after the inputs it already has outputs for."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=65536, help="Inputs decoded together (--input-file)."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
    threads: Optional[int] = THREADS,
    show_help: bool = typer.Option(False, "--help", "-h", help="Show this message; with a run, its task's options too."),
):
    """Generate, label, tag, translate or forecast with a trained model.

    Needs only the checkpoint: no recipe, no data. Conditional tasks take --input or
    --input-file and print one output per input line. Every other option is the task's own
    (`seqcli sample RUN --help` lists those of RUN's task, with types and defaults); options
    not given take the values of the recipe's `sample:` section.
    """
    import os

    from seqcli import inference
    from seqcli.cli import options as task_options
    from seqcli.errors import ConfigError, SeqcliError
    from seqcli.schema import check_text

    ckpt, task_cls = open_run(ctx, checkpoint, which, show_help, "sample")
    params = inference.sample_parameters(task_cls)
    task_name = ckpt.recipe.task.name
    if show_help:
        typer.echo(ctx.get_help())
        print_task_options(f"Options of the {task_name} task (from {ckpt.path})", task_cls.sample, params, ckpt.recipe.sample,
                           skip=("inputs",))
        raise typer.Exit()
    given = task_options.parse(list(ctx.args), {k: v for k, v in params.items() if k != "inputs"}, task_name)
    if inputs is not None or input_file is not None:
        if "inputs" not in params:
            raise SeqcliError(f"--input/--input-file: the {task_name} task does not take this option (it takes no inputs)")
        given["inputs"] = list(inputs or [])
        for text in given["inputs"]:
            check_text(text, "--input")
    if input_file is not None:
        from seqcli.cli.inputs import check_input_file

        check_input_file(input_file)
    if resume and (output is None or input_file is None):
        raise SeqcliError("--continue: needs --input-file and --output (it appends to the output)")
    if resume and input_file == "-":
        raise SeqcliError("--continue: needs a named --input-file (what stdin held cannot be checked against the "
                          "output)")
    if resume and force:
        raise SeqcliError("--continue and --force: choose one (append to the output, or replace it)")
    source = (input_file,) if input_file not in (None, "-") else ()
    if output is not None:
        from seqcli.files import check_output

        written = check_output(output, "--output", replace=True, inputs=source)  # never an input, folder or device
        if Path(output).exists() and not (force or resume):
            raise SeqcliError(f"--output: {output} already exists; pass --force to replace it, or --continue to "
                              f"append the outputs it lacks")
    try:  # every option and picture is checked before the model is built
        values = inference.sample_options(inference.task_of(ckpt), ckpt.recipe, given, base=os.getcwd())
    except ConfigError as exc:
        raise SeqcliError(f"{task_options.flag(exc.key) if exc.key != 'inputs' else '--input'}: {exc.message}") from None
    pictures = inference.check_figures(values, params, force, inputs=source + ((output,) if output else ()))
    if resume and values.get("n_best", 1) > 1:
        raise SeqcliError("--continue: needs one output line per input (n_best 1)")
    from seqcli.train.threads import use_threads

    use_threads(threads)
    loaded = inference.from_checkpoint(ckpt, device)
    if input_file is not None and not pictures:  # streamed: in batches, written as they are done
        from seqcli.cli.bulk import predict_file

        predict_file(loaded, values, list(inputs or []), input_file, output, written if output else None, resume,
                     batch_size)
        return
    if input_file is not None:
        from seqcli.cli.inputs import read_inputs

        values["inputs"] = list(inputs or []) + [text for _, text in read_inputs(input_file)]
    results = inference.run_sample(loaded.task, loaded.model, loaded.fields, values)
    inference.write_figures(results, pictures)
    text = "\n".join(results.lines) if "inputs" in params else "\n\n".join(results.lines)
    if output is not None:
        inference.write_text(written, text + "\n")
    else:
        typer.echo(text)


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
