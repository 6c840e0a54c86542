"""What every command shares: the consoles, and turning user errors into one line."""

from __future__ import annotations

import functools
import os

import typer
from rich.console import Console

from seqcli.errors import SeqcliError

state = {"debug": bool(os.environ.get("SEQCLI_DEBUG"))}

#: --threads, one declaration for every command that computes: the compute threads of this
#: process (a run's train.threads; default: the cores, shared among processes started together)
THREADS = typer.Option(None, "--threads", min=1, max=1024,
                       help="Compute threads (default: the cores, shared among processes started together).")


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


#: the width of a table printed into a pipe or a file, where no terminal says (COLUMNS does)
PIPE_WIDTH = 100


def print_table(table) -> None:
    """A rich table on stdout: as wide as the terminal; in a pipe as wide as COLUMNS (or
    PIPE_WIDTH), its long cells wrapped onto more lines, no line padded with spaces."""
    import shutil
    import sys

    if sys.stdout.isatty():
        console().print(table)
        return
    width = shutil.get_terminal_size((PIPE_WIDTH, 24)).columns
    out = Console(highlight=False, width=width, file=sys.stdout, force_terminal=False, color_system=None)
    with out.capture() as captured:
        out.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def fail(message: str, code: int = 2, label: str = "error"):
    for line in message.splitlines() or [""]:
        typer.echo(f"{label}: {line}", err=True)
    raise typer.Exit(code)


def guard(fn):
    """Run a command; a SeqcliError becomes 'error: ...' lines on stderr and its exit code
    (2 for bad input), unless --debug asks for the traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SeqcliError as exc:
            if state["debug"]:
                raise
            from seqcli.train import distributed

            if distributed.context().rank > 0:  # rank 0 says it (every rank meets the same errors)
                raise typer.Exit(exc.exit_code) from None
            fail(str(exc), exc.exit_code, exc.label)
        except KeyboardInterrupt:
            if state["debug"]:
                raise
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as exc:
            if state["debug"]:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", 1)

    return wrapper
