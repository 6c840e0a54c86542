"""Pictures: training curves, gradient flow, attention maps, canvases and glimpses, as PNG.

matplotlib is an optional extra (pip install 'seqcli[plot]'); every function here imports it
when called, and without it says how to install it.
"""

from __future__ import annotations

import math
from pathlib import Path

from seqcli.errors import DataError, SeqcliError


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise SeqcliError("plots need matplotlib: pip install 'seqcli[plot]'") from None
    return plt


def output_file(path: str | Path, force: bool, what: str = "--output", inputs: tuple = ()) -> Path:
    """Where a picture goes: a .png path whose folder exists; an existing regular file only
    with --force (never a folder, device or FIFO, never one of `inputs`)."""
    from seqcli.files import check_output

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise SeqcliError(f"{what} {path}: the picture is written as PNG; give a name ending in .png")
    return check_output(path, what, replace=force, inputs=inputs)


def save(fig, path: Path, **options) -> None:
    """Write a figure as PNG, whole or not at all."""
    from seqcli.files import write_atomic

    try:
        write_atomic(path, writer=lambda f: fig.savefig(f, format="png", **{"dpi": 110, "bbox_inches": "tight",
                                                                              **options}))
    finally:
        pyplot().close(fig)


# -- training curves ------------------------------------------------------------------------

def read_metrics(run_dir: Path) -> list[dict]:
    from seqcli.runfolder import RunFolder

    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    if not folder.metrics.is_file():
        raise DataError(f"{run_dir}: no metrics.jsonl (not a run directory, or it has not logged yet)")
    records = [r for r in folder.log().read() if isinstance(r.get("step"), int)]
    if not records:
        raise DataError(f"{folder.metrics}: no records yet")
    return records


def curves(runs: list[Path], metrics: list[str] | None = None) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{panel: {run name: [(step, value), ...]}}: train loss, valid loss, then each other
    validation metric (or only those named in `metrics`)."""
    names = unique_names(runs)
    panels: dict[str, dict[str, list]] = {}
    for run, name in zip(runs, names):
        for record in read_metrics(run):
            split = record.get("split")
            for key, value in record.items():
                if key in ("step", "split", "lr", "elapsed_s", "epoch") or key.endswith("_per_s") or not isinstance(value, (int, float)):
                    continue
                if split == "train" and key != "loss":
                    continue
                panel = f"{split} {key}"
                if metrics and key not in metrics and panel not in metrics:
                    continue
                if math.isfinite(value):
                    panels.setdefault(panel, {}).setdefault(name, []).append((record["step"], float(value)))
    if not panels:
        wanted = ", ".join(metrics or [])
        raise DataError(f"no metric {wanted} in the runs given" if wanted else "the runs have no metrics yet")
    order = sorted(panels, key=lambda p: (p != "train loss", p != "valid loss", p))
    return {p: panels[p] for p in order}


def unique_names(runs: list[Path]) -> list[str]:
    """Run directory names, with parents added where two would look alike."""
    names = [Path(r).name or str(r) for r in runs]
    if len(set(names)) < len(names):
        names = [str(r) for r in runs]
    return names


def plot_curves(panels: dict, out: Path) -> None:
    plt = pyplot()
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, layout="constrained")
    for ax, (panel, series) in zip(axes.flat, panels.items()):
        for name, points in series.items():
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=name)
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    save(fig, out)


# -- attention maps -----------------------------------------------------------------------

def attention_maps(maps: list[dict], out: Path, limit: int = 8) -> None:
    """One heat map per input (the first `limit`): output tokens down, input tokens across."""
    plt = pyplot()
    maps = maps[:limit]
    cols = min(len(maps), 4)
    rows = math.ceil(len(maps) / cols)
    width = max(len(m["input"]) for m in maps)
    height = max(len(m["output"]) for m in maps)
    cell = 0.32
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(max(3.0, cols * (width * cell + 1.2)), max(2.5, rows * (height * cell + 1.0))))
    for ax, m in zip(axes.flat, maps):
        ax.imshow(m["weights"], cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal")
        ax.set_xticks(range(len(m["input"])), [shown(t) for t in m["input"]], fontsize=8)
        ax.set_yticks(range(len(m["output"])), [shown(t) for t in m["output"]], fontsize=8)
        ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False, length=0)
        ax.set_xlabel("input", fontsize=8)
        ax.set_ylabel("output", fontsize=8)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    save(fig, out)


def shown(token: str) -> str:
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(token, token)


# -- glimpses and canvases ----------------------------------------------------------------

def glimpses(records: list[dict], grid: int, out: Path, limit: int = 8) -> None:
    """Per image (a row): the image with each glimpse's grid drawn as a numbered box, then the
    patch each glimpse read."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    records = records[:limit]
    steps = len(records[0]["glimpses"])
    fig, axes = plt.subplots(len(records), steps + 1, squeeze=False, layout="constrained",
                             figsize=(1.6 * (steps + 1) + 0.5, 1.7 * len(records)))
    colours = plt.get_cmap("autumn")
    for row, record in zip(axes, records):
        row[0].imshow(record["image"], cmap="gray_r", vmin=0, vmax=1)
        row[0].set_title(f"read as {record['label']}", fontsize=8)
        for t, g in enumerate(record["glimpses"]):
            half = g["delta"] * (grid - 1) / 2 + g["sigma"]
            colour = colours(t / max(steps - 1, 1))
            row[0].add_patch(Rectangle((g["gx"] - half, g["gy"] - half), 2 * half, 2 * half, fill=False,
                                       edgecolor=colour, linewidth=1.4))
            row[0].text(g["gx"], g["gy"], str(t + 1), color=colour, fontsize=7, ha="center", va="center")
            row[t + 1].imshow(g["patch"], cmap="gray_r")
            row[t + 1].set_title(f"glimpse {t + 1}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    save(fig, out)


def canvas_strip(records: list[dict], grid: int, out: Path, limit: int = 10) -> None:
    """Per class drawn (a row): the canvas after each writing step, left to right, with the
    window the step wrote through."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    records = records[:limit]
    steps = len(records[0]["canvases"])
    fig, axes = plt.subplots(len(records), steps, squeeze=False, layout="constrained",
                             figsize=(1.1 * steps + 0.5, 1.2 * len(records)))
    for row, record in zip(axes, records):
        for t, (ax, canvas, w) in enumerate(zip(row, record["canvases"], record["windows"])):
            ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
            half = w["delta"] * (grid - 1) / 2 + w["sigma"]
            ax.add_patch(Rectangle((w["gx"] - half, w["gy"] - half), 2 * half, 2 * half, fill=False,
                                   edgecolor="tab:red", linewidth=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_ylabel(record["label"], rotation=0, labelpad=10)
        row[0].set_title("step 1", fontsize=7)
        row[-1].set_title(f"step {steps}", fontsize=7)
    save(fig, out)
