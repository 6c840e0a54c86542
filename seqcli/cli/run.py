from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import console, guard


@guard
def run(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a bundled recipe (see `seqcli recipes list`)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. train.max_steps=500 model.hidden_size=128"),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", "-o", help="Where to write the run (default: runs/RECIPE-TIME). Never overwritten."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="With --resume: continue even if the recipe changed what is learnt."),
):
    """Train and evaluate the model a recipe describes, with live progress.

    The run directory gets the resolved recipe, metrics.jsonl, checkpoints/last.pt and
    checkpoints/best.pt, and samples.txt where the task can sample. Ctrl-C saves a
    checkpoint and stops; `seqcli resume` continues exactly where it stopped.
    """
    from pathlib import Path

    from seqcli import runs
    from seqcli.errors import SeqcliError
    from seqcli.recipe.resolve import load_recipe

    checked = load_recipe(recipe, overrides or [])
    if resume:
        if run_dir is None:
            raise SeqcliError("--resume needs --run-dir (or use `seqcli resume` for the latest run)")
        runs.resume(Path(run_dir), checked, [], force, console())
        return
    path = runs.new_run_dir(run_dir, checked)
    runs.train(checked, path, console())


@guard
def resume(
    run_dir: Optional[str] = typer.Argument(None, help="The run directory (default: the latest run under runs/)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value changes, e.g. train.max_steps=4000 to train longer."),
    force: bool = typer.Option(False, "--force", help="Continue even if the overrides change what is learnt."),
):
    """Continue a run from its last checkpoint, exactly where it stopped.

    `train.max_steps` is the run's total: a finished run is extended by raising it.
    Changing anything that alters what is learnt (sizes, data, optimizer) needs --force.
    """
    from pathlib import Path

    from seqcli import runs

    runs.resume(Path(run_dir) if run_dir else runs.latest_run(), None, overrides or [], force, console())
