from __future__ import annotations

import json
from typing import Optional

import typer

from seqcli.cli.common import console, guard


@guard
def evaluate(
    checkpoint: str = typer.Argument(..., help="A run directory or a checkpoint file."),
    split: str = typer.Option("test", "--split", help="Which split of the recipe's dataset."),
    file: Optional[str] = typer.Option(None, "--file", help="Score a file in the dataset's format instead of a split."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
):
    """Score a checkpoint on a split of its dataset (re-read from the recipe stored in it)."""
    from seqcli import build
    from seqcli.api import Data
    from seqcli.errors import DataError
    from seqcli.recipe.schema import File, Problem
    from seqcli.train.trainer import evaluate as run_eval

    loaded = build.from_checkpoint(checkpoint, which, device)
    dataset = build.dataset(loaded.recipe.data)
    if file is not None:
        try:
            path = File().apply(file)
        except Problem as exc:
            raise DataError(f"--file: {exc.message}") from None
        data = Data(splits={"file": dataset.load_file(path, loaded.fields)}, fields=loaded.fields)
        split = "file"
    else:
        data = dataset.load()
        changed = [k for k in loaded.fields if k in data.fields and data.fields[k] != loaded.fields[k]]
        if changed:
            raise DataError(f"the dataset's {', '.join(changed)} vocabulary differs from the checkpoint's: "
                            f"its files changed since training; score a file with --file instead")
        if split not in data.splits:
            raise DataError(f"--split: the dataset has no split '{split}' (it has: {', '.join(data.splits)})")
    metrics = run_eval(loaded.task, loaded.model, data, split, loaded.recipe.train_config())
    step = loaded.checkpoint.get("step")
    if as_json:
        typer.echo(json.dumps({"checkpoint": loaded.checkpoint["path"], "step": step, "split": file or split, **metrics}))
        return
    from rich.table import Table

    table = Table(title=f"step {step}, {file or split}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}")
    console().print(table)
