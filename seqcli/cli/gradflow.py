from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import console, guard


@guard
def gradflow(
    recipe: str = typer.Argument("adding", help="A recipe (default: adding, a long-range task)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides for the recipe."),
    cell: Optional[List[str]] = typer.Option(None, "--cell", "-c", help="Cells to compare (repeat; default: rnn and lstm)."),
    steps: int = typer.Option(300, "--steps", help="Training steps between the two measurements."),
    clip: Optional[List[str]] = typer.Option(None, "--clip", help="Gradient clipping to compare: a max norm or 'none' (repeat; default: the recipe's train.clip_grad_norm)."),
    recurrent_scale: float = typer.Option(1.0, "--recurrent-scale", help="Multiply the recurrent weights at initialisation (> 1 makes gradients explode)."),
    output: str = typer.Option("gradflow.png", "--output", "-o", help="The plot (PNG); the numbers go next to it as .json."),
    force: bool = typer.Option(False, "--force", help="Replace --output (and its .json) if they exist."),
):
    """Measure how the gradient ||dL/dh_t|| fades (or explodes) with distance from the loss.

    Builds the recipe's model once per cell, measures the gradient with respect to the hidden
    state at every step on a fixed batch, trains, and measures again. Compare `rnn` (vanishing
    gradient) with `lstm`; with --recurrent-scale 2 and `model.cell.nonlinearity=relu`, compare
    --clip none with --clip 1. Writes a plot (needs matplotlib) and the numbers as JSON.
    """
    import json

    from rich.table import Table

    from seqcli import gradflow as lab
    from seqcli import plots
    from seqcli.errors import SeqcliError

    if "=" in recipe:  # only overrides were given: they belong to the default recipe
        overrides, recipe = [recipe, *(overrides or [])], "adding"
    if steps < 0:
        raise SeqcliError("--steps must be >= 0")
    if not (0 < recurrent_scale < float("inf")):
        raise SeqcliError(f"--recurrent-scale {recurrent_scale}: must be a positive number")
    clips = None
    if clip:
        clips = []
        for value in clip:
            try:
                clips.append(None if value.lower() == "none" else float(value))
            except ValueError:
                raise SeqcliError(f"--clip {value!r}: a positive number or 'none'") from None
            if clips[-1] is not None and not clips[-1] > 0:
                raise SeqcliError(f"--clip {value!r}: a positive number or 'none'")
    from seqcli.files import check_output, write_atomic

    out = plots.output_file(output, force)
    numbers = check_output(out.with_suffix(".json"), "--output", replace=force)
    plots.pyplot()  # fail now, not after training, when matplotlib is missing
    shown = console()
    result = lab.run(recipe, overrides or [], cell or ["rnn", "lstm"], clips, steps, recurrent_scale,
                     reporter=lambda m: shown.print(m, highlight=False))
    settings = result["settings"]

    table = Table(title=f"||dL/dh_t||, mean over a batch, by distance from the last step "
                        f"(sequence length {result['sequence_length']})", box=None, pad_edge=False)
    table.add_column("distance", justify="right")
    for s in settings:
        table.add_column(f"{s['label']}\ninit", justify="right")
        table.add_column(f"{s['label']}\ntrained", justify="right")
    columns = [(lab.by_distance(s["init"]), lab.by_distance(s["trained"]) if s["trained"] else {}) for s in settings]
    for d in columns[0][0]:
        table.add_row(str(d), *[f"{c.get(d, float('nan')):.2e}" if d in c else "-" for pair in columns for c in pair])
    shown.print(table)

    summary = Table(title=f"training, {result['steps']} steps", box=None, pad_edge=False)
    summary.add_column("")
    for s in settings:
        summary.add_column(s["label"], justify="right")

    def ratio(norms):
        return f"{norms[0] / norms[-1]:.1e}" if norms and norms[-1] else "-"

    rows = {
        "loss, first 10 steps": [_fmt(s["loss_first"]) for s in settings],
        "loss, last 10 steps": [_fmt(s["loss_last"]) for s in settings],
        "grad norm, median": [_fmt(s["grad_norm_median"]) for s in settings],
        "grad norm, max": [_fmt(s["grad_norm_max"]) for s in settings],
        "steps clipped": [f"{s['clipped_fraction']:.0%}" if s["clip"] and s["clipped_fraction"] is not None
                          else "off" if not s["clip"] else "-" for s in settings],
        "diverged at step": [str(s["diverged_at"] or "-") for s in settings],
        "t0/tT at init": [ratio(s["init"]) for s in settings],
        "t0/tT trained": [ratio(s["trained"]) for s in settings],
    }
    for name, values in rows.items():
        summary.add_row(name, *values)
    shown.print(summary)
    shown.print("t0/tT: ||dL/dh|| at the first step over that at the last (tiny: vanishing; huge: exploding)")
    lab.plot(result, out)
    write_atomic(numbers, json.dumps(result, indent=1))
    shown.print(f"wrote {out} and {numbers}")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}"
