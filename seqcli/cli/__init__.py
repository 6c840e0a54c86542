"""The `seqcli` command line. Commands import torch only when they run, so `--help` is instant."""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from seqcli import __version__
from seqcli.cli import average, evaluate, export, gradflow, plot, plugins, recipes, run, sample, serve, sweep
from seqcli.cli.common import state

app = typer.Typer(
    name="seqcli",
    help="Train, evaluate and sample recurrent sequence models (RNN, LSTM, GRU) from YAML recipes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool):
    if value:
        typer.echo(f"seqcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    no_plugins: bool = typer.Option(False, "--no-plugins", help="Use only seqcli's own cells, tasks and datasets (also: SEQCLI_NO_PLUGINS=1)."),
    disable: Optional[List[str]] = typer.Option(None, "--disable-plugin", metavar="PACKAGE", help="Switch off one plugin package (repeatable; also: SEQCLI_DISABLE_PLUGINS=pkg1,pkg2)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
):
    """Train, evaluate and sample recurrent sequence models from YAML recipes."""
    state["debug"] = debug or bool(os.environ.get("SEQCLI_DEBUG"))
    if no_plugins or disable:
        from seqcli import registry

        if no_plugins:
            os.environ["SEQCLI_NO_PLUGINS"] = "1"
        if disable:  # in the environment, so distributed workers see it too
            before = os.environ.get("SEQCLI_DISABLE_PLUGINS", "")
            os.environ["SEQCLI_DISABLE_PLUGINS"] = ",".join(p for p in [before, *disable] if p)
        registry.forget()


app.command("run")(run.run)
app.command("resume")(run.resume)
app.command("sample", context_settings=sample.TASK_OPTIONS, add_help_option=False)(sample.sample)
app.command("evaluate", context_settings=sample.TASK_OPTIONS, add_help_option=False)(evaluate.evaluate)
app.command("export")(export.export)
app.command("average")(average.average)
app.command("serve")(serve.serve)
app.command("plot")(plot.plot)
app.command("gradflow")(gradflow.gradflow)
app.command("sweep")(sweep.sweep)
app.add_typer(recipes.app, name="recipes")
app.add_typer(plugins.app, name="plugins")


def main() -> None:
    import warnings

    from seqcli import deprecation
    from seqcli.train.threads import quiet_waits

    quiet_waits()  # before torch starts its threads: in this process and every one it starts
    warnings.showwarning = deprecation.one_line  # a renamed recipe key, a replaced plugin form: one line
    app(prog_name="seqcli")
