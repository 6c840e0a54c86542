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

    out = plots.output_file(output, force)
    panels = plots.curves([Path(r) for r in run_dirs], metric)
    plots.pyplot()
    plots.plot_curves(panels, out)
    table = Table("quantity", "run", "points", "first", "last", "best", box=None, pad_edge=False)
    for panel, series in panels.items():
        higher = not panel.endswith(("loss", "perplexity", "bpc", "ter", "mae", "rmse", "error"))
        for name, points in series.items():
            values = [v for _, v in points]
            best = max(values) if higher else min(values)
            table.add_row(panel, name, str(len(points)), f"{values[0]:.4f}", f"{values[-1]:.4f}", f"{best:.4f}")
    shown = console()
    shown.print(table)
    shown.print(f"wrote {out} ({len(panels)} panels, {len(run_dirs)} run{'s' if len(run_dirs) > 1 else ''})")
