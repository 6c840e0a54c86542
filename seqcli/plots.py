"""Pictures of runs and sweeps, as PNG: training curves, a sweep's history; and `pyplot` and
`save`, with which tasks draw their own figures (through `seqcli.layers`).

matplotlib is an optional extra (pip install 'seqcli[plot]'); every function here imports it
when called, and without it says how to install it.
"""

from __future__ import annotations

import math
from pathlib import Path

from seqcli.errors import DataError, SeqcliError


def pyplot():
    """matplotlib's pyplot, drawing to files only (no display needed), or one line saying
    which extra installs it (`pip install 'seqcli[plot]'`)."""
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
                if key in ("step", "split", "lr", "elapsed_s", "epoch", "examples", "tokens") or key.endswith("_per_s") or not isinstance(value, (int, float)):
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


# -- sweeps ---------------------------------------------------------------------------------

def sweep_history(report, out: Path) -> None:
    """A sweep (`seqcli.sweep.Report`): optimisation history, each key's importance and
    parallel coordinates, side by side."""
    plt = pyplot()
    spec, importance = report.spec, report.importance
    done = [t for t in report.trials if t.value is not None]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    xs = [t.number for t in done]
    ys = [t.value for t in done]
    ax.scatter(xs, ys, s=14, label="trial")
    running, best = [], None
    for y in ys:
        best = y if best is None else (max(best, y) if spec.maximize else min(best, y))
        running.append(best)
    ax.plot(xs, running, color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"valid {spec.metric}")
    ax.set_title("optimisation history")
    ax.legend()
    ax = axes[1]
    names = list(importance)[::-1]
    ax.barh([n.rpartition(".")[2] for n in names], [importance[n] for n in names])
    ax.set_title("importance")
    ax = axes[2]
    space = {p.key: p for p in spec.space}
    keys = list(space)
    if done and keys:
        def position(key, value):
            p = space[key]
            if p.kind == "choice":
                return value / max(1, len(p.args) - 1)
            low, high = p.args
            if p.kind in ("loguniform", "logint"):
                return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
            return (value - low) / (high - low)

        low, high = min(ys), max(ys)
        cmap = plt.get_cmap("viridis_r" if not spec.maximize else "viridis")
        for t in done:
            if all(k in t.params for k in keys):
                shade = (t.value - low) / (high - low) if high > low else 0.5
                ax.plot(range(len(keys)), [position(k, t.params[k]) for k in keys], color=cmap(shade), alpha=0.7)
        ax.set_xticks(range(len(keys)), [k.rpartition(".")[2] for k in keys])
        ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title("parallel coordinates (darker: better)")
    fig.tight_layout()
    save(fig, out, dpi=100, bbox_inches=None)
