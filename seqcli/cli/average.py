from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import console, guard


@guard
def average(
    sources: List[str] = typer.Argument(..., help="A run directory (with --last or --best), or checkpoint files."),
    output: str = typer.Option(..., "--output", "-o", help="The checkpoint file to write."),
    last: Optional[int] = typer.Option(None, "--last", min=2, max=10_000, help="The run's last K numbered checkpoints."),
    best: Optional[int] = typer.Option(None, "--best", min=2, max=10_000, help="The run's K numbered checkpoints with the best validation metric."),
    force: bool = typer.Option(False, "--force", help="Replace --output if it exists."),
):
    """Write a checkpoint whose weights are the mean of several saved ones.

    It works with sample, evaluate and export like any checkpoint (it cannot be resumed). A
    run keeps numbered checkpoints with train.keep_checkpoints: N.
    """
    from seqcli import average as averaging

    chosen = averaging.choose(list(sources), last, best)
    path = averaging.write(averaging.average(chosen), output, force, [c.path for c in chosen])
    console().print(f"wrote {path}: the mean of the checkpoints of steps {', '.join(str(c.step) for c in chosen)}",
                    highlight=False)
