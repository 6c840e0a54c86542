from __future__ import annotations

import typer

from seqcli.cli.common import console, guard

app = typer.Typer(help="Cells, tasks and datasets installed as plugins.", no_args_is_help=True)


@app.command("list")
@guard
def list_(
    load: bool = typer.Option(True, "--load/--no-load", help="Import each plugin to check it (--no-load: metadata only, fast)."),
):
    """Every cell, task and dataset: name, package, version and status (ok, or why it failed)."""
    from rich.table import Table

    from seqcli import registry

    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("kind", "name", "package", "version", "status"):
        table.add_column(column)
    failed = 0
    for p in registry.all_plugins(load_them=load):
        if p.also_claimed_by:
            status = f"conflict: also registered by {'; '.join(p.also_claimed_by)}"
        elif p.failure:
            status = f"failed: {p.failure}"
        else:
            status = "ok" if p.loaded is not None else "found"
        failed += status != "ok" and status != "found"
        table.add_row(p.kind, p.name, p.package, p.version, status)
    console().print(table, soft_wrap=True)
    if failed:
        typer.echo(f"{failed} plugin(s) cannot be used; the others work normally", err=True)


@app.command("new")
@guard
def new(
    kind: str = typer.Argument(..., help="cell, task or dataset"),
    name: str = typer.Argument(..., help="The plugin's registered name, e.g. my_cell."),
    folder: str = typer.Option(".", "--dir", help="Where to create the package folder seqcli-NAME."),
):
    """Write a plugin package skeleton (pyproject with its entry point, code, tests that pass)."""
    from seqcli.scaffold import new_plugin

    root = new_plugin(kind, name, folder)
    typer.echo(f"wrote {root}; next: pip install -e {root} && python -m pytest {root}")
