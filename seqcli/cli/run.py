from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import console, guard


@guard
def run(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a bundled recipe (see `seqcli recipes list`)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. train.max_steps=500 model.hidden_size=128"),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", "-o", help="Where to write the run (default: runs/RECIPE-TIME). Never overwritten."),
):
    """Train and evaluate the model a recipe describes, with live progress.

    The run directory gets the resolved recipe, metrics.jsonl, checkpoints/last.pt and
    checkpoints/best.pt, and samples.txt where the task can sample.
    """
    from seqcli import runs
    from seqcli.recipe.resolve import load_recipe

    checked = load_recipe(recipe, overrides or [])
    path = runs.new_run_dir(run_dir, checked)
    runs.train(checked, path, console())
