from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import console, guard


@guard
def plot(
    run_dirs: List[str] = typer.Argument(..., help="One or more run directories; several are overlaid to compare."),
    output: str = typer.Option("curves.png", "--output", "-o", help="The PNG to write."),
    metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="Only these metrics (repeat), e.g. -m loss -m exact_match."),
    force: bool = typer.Option(False, "--force", help="Replace --output if it exists."),
):
    """Draw loss and metric curves over steps from runs' metrics.jsonl, as a PNG.

    One panel per quantity (training loss, validation loss, each validation metric), one
    line per run. Needs matplotlib: pip install 'seqcli[plot]'.
    """
    from pathlib import Path

    from rich.table import Table

    from seqcli import plots

    from seqcli.metrics import best_of

    out = plots.output_file(output, force)
    panels = plots.curves([Path(r) for r in run_dirs], metric)
    plots.pyplot()
    plots.plot_curves(panels, out)
    tasks = dict(zip(plots.unique_names([Path(r) for r in run_dirs]), map(task_class_of, run_dirs)))
    table = Table("quantity", "run", "points", "first", "last", "best", box=None, pad_edge=False)
    for panel, series in panels.items():
        for name, points in series.items():
            values = [v for _, v in points]
            task = tasks.get(name)
            direction = task.direction(panel.split(" ", 1)[1]) if task is not None else None
            best = best_of(values, direction) if direction else None  # only where the task says which way is better
            table.add_row(panel, name, str(len(points)), f"{values[0]:.4f}", f"{values[-1]:.4f}",
                          f"{best:.4f}" if best is not None else "-")
    shown = console()
    shown.print(table)
    shown.print(f"wrote {out} ({len(panels)} panels, {len(run_dirs)} run{'s' if len(run_dirs) > 1 else ''})")


def task_class_of(run_dir: str):
    """The task class a run folder's recipe names, or None when it cannot be told."""
    import yaml

    from seqcli import registry
    from seqcli.errors import SeqcliError
    from seqcli.files import read_regular
    from seqcli.runfolder import RunFolder

    try:
        name = yaml.safe_load(read_regular(RunFolder(run_dir).recipe, 1 << 20))["task"]["name"]
        package, _, plain = str(name).rpartition(":")
        return registry.load("task", plain, package or None)
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError, SeqcliError):
        return None
