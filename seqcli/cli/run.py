from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, console, guard

NPROC = typer.Option(None, "--nproc-per-node", help="Train data-parallel in N processes on this machine (torch.distributed: gloo on CPU, NCCL on GPU).")
NNODES = typer.Option(1, "--nnodes", help="Machines taking part (each runs the same command with its --node-rank).")
NODE_RANK = typer.Option(None, "--node-rank", help="This machine's number, 0 to nnodes-1 (with --nnodes > 1).")
ENDPOINT = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of node 0, where the processes meet (with --nnodes > 1).")


def distributed_launch(argv: list[str], nproc: int | None, nnodes: int, node_rank, endpoint) -> bool:
    """In the command a user typed with --nproc-per-node: start the workers; True when done.
    In a worker (or without the option): False, and the command trains here."""
    import os

    from seqcli.cli.common import state
    from seqcli.train import distributed

    if not distributed.launching(nproc, nnodes):
        return False
    if state["debug"]:
        os.environ["SEQCLI_DEBUG"] = "1"
    distributed.launch(argv, nproc or 1, nnodes, node_rank, endpoint)
    return True


@guard
def run(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a bundled recipe (see `seqcli recipes list`)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. train.max_steps=500 model.hidden_size=128"),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", "-o", help="Where to write the run (default: runs/RECIPE-TIME). Never overwritten."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="With --resume: continue even if the recipe changed what is learnt."),
    folds: Optional[int] = typer.Option(None, "--folds", min=2, max=100, help="Cross-validate: K runs (RUN_DIR/fold-1 ...), each validating on one of K folds of the training and validation examples; the mean and spread of each metric."),
    threads: Optional[int] = THREADS,
    nproc_per_node: Optional[int] = NPROC,
    nnodes: int = NNODES,
    node_rank: Optional[int] = NODE_RANK,
    rdzv_endpoint: Optional[str] = ENDPOINT,
):
    """Train and evaluate the model a recipe describes, with live progress.

    The run directory gets the resolved recipe, metrics.jsonl, checkpoints/last.pt and
    checkpoints/best.pt, and samples.txt where the task can sample. Ctrl-C saves a
    checkpoint and stops; `seqcli resume` continues exactly where it stopped.
    """
    from pathlib import Path

    from seqcli import crossval, runs
    from seqcli.errors import SeqcliError
    from seqcli.recipe.resolve import load_recipe
    from seqcli.train import distributed

    overrides = list(overrides or [])
    checked = load_recipe(recipe, overrides)
    if threads:  # a setting of this process, not a key the user wrote: errors never name it
        checked.train.threads = threads
    launching = distributed.launching(nproc_per_node, nnodes)
    if folds or (checked.folds and checked.folds.get("fold") is None):
        if checked.folds and checked.folds.get("fold") is not None:
            raise SeqcliError(f"--folds: the recipe sets dataset.fold ({checked.folds['fold']}), one fold's run; "
                              f"remove it to train every fold")
        if launching:
            raise SeqcliError("--folds: the folds train one after the other in this process; drop --nproc-per-node")
        if resume and run_dir is None:
            raise SeqcliError("--resume needs --run-dir: the cross-validation's folder")
        checked.folds = {"folds": folds or checked.folds["folds"], "fold": None}
        show_folds(crossval.cross_validation(checked, run_dir, resume, console()))
        return
    if launching:
        distributed.check_options(nproc_per_node, nnodes, node_rank, rdzv_endpoint)
        distributed.check_devices(nproc_per_node, checked.train.device)
    if resume and run_dir is None:
        raise SeqcliError("--resume needs --run-dir (or use `seqcli resume` for the latest run)")
    if resume:
        if launching:  # checked here, once, rather than by every worker
            runs.last_checkpoint(Path(run_dir))
        argv = ["run", recipe, *overrides, "--run-dir", run_dir, "--resume"] + (["--force"] if force else [])
    else:
        if launching:  # the workers are told where; checked here, once
            run_dir = str(runs.choose_run_dir(run_dir, checked))
        argv = ["run", recipe, *overrides] + (["--run-dir", run_dir] if run_dir else [])
    argv += ["--threads", str(threads)] if threads else []
    if distributed_launch(argv, nproc_per_node, nnodes, node_rank, rdzv_endpoint):
        return
    runs.in_process(checked, run_dir, resume, force, console())


def show_folds(summary: dict) -> None:
    from rich.table import Table

    k = summary["folds"]
    scheme = " (forward-chaining: each fold validates on data after all it trains on)" \
        if summary.get("scheme") == "forward-chaining" else ""
    table = Table(title=f"{k}-fold cross-validation{scheme}: the best checkpoint of each fold, on its validation fold")
    for column in ("metric", "mean", "std", *(f"fold {n}" for n in range(1, k + 1))):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, m in summary["valid"].items():
        table.add_row(name, f"{m['mean']:.4f}", f"{m['std']:.4f}", *(f"{v:.4f}" for v in m["folds"]))
    console().print(table)


@guard
def resume(
    run_dir: Optional[str] = typer.Argument(None, help="The run directory (default: the latest run under runs/)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value changes, e.g. train.max_steps=4000 to train longer."),
    force: bool = typer.Option(False, "--force", help="Continue even if the overrides change what is learnt."),
    threads: Optional[int] = THREADS,
    nproc_per_node: Optional[int] = NPROC,
    nnodes: int = NNODES,
    node_rank: Optional[int] = NODE_RANK,
    rdzv_endpoint: Optional[str] = ENDPOINT,
):
    """Continue a run from its last checkpoint, exactly where it stopped.

    `train.max_steps` is the run's total: a finished run is extended by raising it.
    Changing anything that alters what is learnt (sizes, data, optimizer) needs --force.
    """
    from pathlib import Path

    from seqcli import runfolder, runs
    from seqcli.train import distributed

    if run_dir and "=" in run_dir and not Path(run_dir).exists():  # `seqcli resume train.max_steps=N`
        overrides, run_dir = [run_dir, *(overrides or [])], None
    overrides = list(overrides or [])
    path = Path(run_dir) if run_dir else runfolder.latest()
    if distributed.launching(nproc_per_node, nnodes):  # checked here, once, rather than by every worker
        device = runs.last_checkpoint(path).recipe.train.device
        device = next((o.partition("=")[2] for o in overrides or [] if o.startswith("train.device=")), device)
        distributed.check_devices(nproc_per_node, device)
    argv = ["resume", str(path), *overrides] + (["--force"] if force else []) + \
        (["--threads", str(threads)] if threads else [])
    if distributed_launch(argv, nproc_per_node, nnodes, node_rank, rdzv_endpoint):
        return
    runs.in_process(None, path, True, force, console(), overrides, threads)
