from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import guard, print_table

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
    table.add_column("recipe", style="bold", no_wrap=True)
    table.add_column("package", no_wrap=True)
    table.add_column("description", overflow="fold")
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
    print_table(table)


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
    """Start your own recipe from a bundled one (or one a plugin package ships); the files it
    names relative to itself (a dataset's path) are copied beside it."""
    from seqcli.recipe.resolve import copy_recipe

    for path in copy_recipe(name, dest, force):
        typer.echo(f"wrote {path}")


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
