from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import guard, print_table
from seqcli.errors import SeqcliError

app = typer.Typer(help="Cells, tasks and datasets installed as plugins.", no_args_is_help=True)


def _rows(load: bool) -> list[dict]:
    from seqcli import registry

    rows = []
    for p in registry.all_plugins(load_them=load):
        rows.append({"kind": p.kind, "name": p.name, "qualified": p.qualified, "package": p.package,
                     "version": p.version, "entry_point": p.value, "status": registry.status(p)})
    for package, version, problem in _recipe_rows():
        rows.append({"kind": "recipes", "name": "*", "qualified": f"{package}:*", "package": package,
                     "version": version, "entry_point": registry.RECIPES, "status": problem})
    return rows


def _recipe_rows():
    """(package, version, status) of each package that ships recipes."""
    from seqcli import registry
    from seqcli.recipe.load import available

    found = {(p, v) for p, v, _ in registry.recipe_folders()}
    for ep, package, version in registry._entry_points(registry.RECIPES):
        if (package, version) in found:
            count = sum(1 for name, (_, pkg) in available().items() if pkg == package and ":" in name)
            yield package, version, f"ok ({count} recipe{'s' if count != 1 else ''})"
        else:
            yield package, version, f"failed: the recipe folder {ep.value!r} cannot be found"


@app.command("list")
@guard
def list_(
    load: bool = typer.Option(True, "--load/--no-load", help="Import each plugin to check it (--no-load: metadata only, fast)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per plugin, for machines."),
):
    """Every cell, task and dataset (and packages' recipes): name, package, version and status
    (ok, why it failed, or how a name shared by packages resolves)."""
    import json

    rows = _rows(load)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False, box=None, pad_edge=False)
        for column in ("kind", "name", "package", "version", "status"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(row[c]) for c in ("kind", "name", "package", "version", "status")))
        print_table(table)  # in a pipe: wrapped at COLUMNS, nothing cut (--json for machines)
    failed = sum(r["status"].startswith("failed") for r in rows)
    if failed:
        typer.echo(f"{failed} plugin(s) cannot be used; the others work normally", err=True)


@app.command("check")
@guard
def check(
    packages: Optional[List[str]] = typer.Argument(None, help="Only these packages' plugins (default: all)."),
):
    """Import every plugin and check it against its contract; exit 1 if any fails (for CI)."""
    from seqcli import registry

    rows = _rows(load=True)
    if packages:
        wanted = {registry.normalize(p) for p in packages}
        rows = [r for r in rows if registry.normalize(r["package"]) in wanted]
        missing = wanted - {registry.normalize(r["package"]) for r in rows}
        if missing:
            raise SeqcliError(f"no plugins from {', '.join(sorted(missing))} are installed")
    failed = [r for r in rows if r["status"].startswith("failed")]
    for r in failed:
        typer.echo(f"{r['kind']} {r['qualified']} ({r['package']} {r['version']}): {r['status']}", err=True)
    typer.echo(f"{len(rows) - len(failed)} ok, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


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
