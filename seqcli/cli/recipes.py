from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seqcli.cli.common import console, guard

app = typer.Typer(help="List, show, copy and validate recipes.", no_args_is_help=True)


@app.command("list")
@guard
def list_():
    """The bundled recipes, with one-line descriptions."""
    import yaml
    from rich.table import Table

    from seqcli.recipe.load import bundled

    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("recipe", style="bold")
    table.add_column("description")
    for name, path in bundled().items():
        try:
            description = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("description", "")
        except yaml.YAMLError:
            description = "(unreadable)"
        table.add_row(name, str(description))
    console().print(table)


@app.command("show")
@guard
def show(name: str = typer.Argument(..., help="A bundled recipe's name, or a recipe file.")):
    """Print a recipe."""
    from seqcli.recipe.load import locate

    typer.echo(locate(name).read_text(encoding="utf-8"), nl=False)


@app.command("copy")
@guard
def copy(
    name: str = typer.Argument(..., help="A bundled recipe's name."),
    dest: str = typer.Argument(..., help="The new recipe file."),
    force: bool = typer.Option(False, "--force", help="Replace DEST if it exists."),
):
    """Start your own recipe from a bundled one."""
    from seqcli.errors import SeqcliError
    from seqcli.recipe.load import locate

    target = Path(dest)
    if target.is_dir():
        target = target / f"{Path(locate(name)).stem}.yaml"
    if target.exists() and not force:
        raise SeqcliError(f"{target} already exists; pass --force to replace it")
    target.write_text(locate(name).read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"wrote {target}")


@app.command("validate")
@guard
def validate(
    recipe: str = typer.Argument(..., help="A recipe file or a bundled recipe's name."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides to check with it."),
    show: bool = typer.Option(False, "--show", help="Print the resolved recipe, every default filled in."),
):
    """Check a recipe without running it: every problem at once, with file and line."""
    from seqcli.recipe.resolve import load_recipe

    checked = load_recipe(recipe, overrides or [])
    if show:
        typer.echo(checked.to_yaml(), nl=False)
    d = checked.data
    typer.echo(f"ok: {recipe} (dataset {d['dataset']['name']}, task {d['task']['name']}, "
               f"cell {d['model']['cell']['name']})")
