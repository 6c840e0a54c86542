from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from seqcli.cli.common import console, guard

app = typer.Typer(help="List, show, copy and validate recipes.", no_args_is_help=True)


@app.command("list")
@guard
def list_():
    """The bundled recipes and those plugin packages ship, with one-line descriptions."""
    from rich.table import Table
    from rich.text import Text

    from seqcli.errors import RecipeError
    from seqcli.recipe.load import available, parse_yaml

    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("recipe", style="bold")
    table.add_column("package")
    table.add_column("description")
    recipes = available()
    for name, (path, package) in recipes.items():
        if ":" in name and recipes.get(name.partition(":")[2]) == (path, package):
            continue  # listed under its plain name
        try:
            loaded = parse_yaml(path.read_text(encoding="utf-8"), str(path))[1]
            description = loaded.get("description", "") if isinstance(loaded, dict) else "(not a recipe)"
        except (RecipeError, OSError, UnicodeDecodeError):
            description = "(unreadable)"
        table.add_row(Text(name), Text(package), Text(str(description)))  # no markup: '[digits]' is text
    from rich.console import Console

    (console() if sys.stdout.isatty() else Console(highlight=False, width=100_000)).print(table)


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
    """Start your own recipe from a bundled one (or one a plugin package ships)."""
    from seqcli.files import check_output, write_atomic
    from seqcli.recipe.load import locate

    target = Path(dest)
    if target.is_dir():
        target = target / f"{Path(locate(name)).stem}.yaml"
    source = locate(name)
    real = check_output(target, "copy:", replace=force, inputs=(source,))
    write_atomic(real, source.read_bytes())
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
    typer.echo(f"ok: {recipe} (dataset {checked.dataset.name}, task {checked.task.name}, cell {checked.cell.name})")
