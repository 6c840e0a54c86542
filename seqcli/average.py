"""`seqcli average`: one checkpoint whose weights are the mean of several saved ones
(OpenNMT-py's `average_models`, fairseq's `average_checkpoints`): the last K a run kept, its
K best by validation, or checkpoint files named one by one. The result is a checkpoint like
any other for `sample`, `evaluate` and `export`; it holds no training state."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from seqcli.errors import CheckpointError, SeqcliError
from seqcli.runfolder import RunFolder
from seqcli.train import checkpoint as ckpt_io
from seqcli.train.checkpoint import Checkpoint


def choose(sources: list[str], last: int | None = None, best: int | None = None) -> list[Checkpoint]:
    """The checkpoints to average: `last` or `best` K of one run's numbered checkpoints
    (train.keep_checkpoints), or the checkpoint files given (oldest step first)."""
    if last is not None and best is not None:
        raise SeqcliError("--last and --best: choose one")
    folders = [s for s in sources if Path(s).is_dir()]
    if last is None and best is None:
        if folders:
            raise SeqcliError(f"{folders[0]}: a run directory; say which of its checkpoints: --last K or --best K")
        chosen = [ckpt_io.load(s) for s in sources]
    else:
        if len(sources) != 1 or not folders:
            raise SeqcliError(f"--{'last' if last is not None else 'best'}: give one run directory")
        count = last if last is not None else best
        numbered = RunFolder(sources[0]).numbered()
        if count > len(numbered):
            raise SeqcliError(f"{sources[0]}: {len(numbered)} numbered checkpoint(s) kept, {count} asked for (a run "
                              f"keeps its last N with train.keep_checkpoints: N)")
        chosen = [ckpt_io.load(path) for path in numbered]
        if best is not None:
            chosen = _best(chosen, count, sources[0])
        else:
            chosen = chosen[-count:]
    if len(chosen) < 2:
        raise SeqcliError("averaging needs at least 2 checkpoints")
    return sorted(chosen, key=lambda c: c.step)


def _best(chosen: list[Checkpoint], count: int, run: str) -> list[Checkpoint]:
    from seqcli import inference

    task = inference.task_class(chosen[-1])
    scored = [c for c in chosen if isinstance(c.metrics, dict) and isinstance(c.metrics.get(task.main_metric), float)
              and math.isfinite(c.metrics[task.main_metric])]
    if len(scored) < count:
        raise SeqcliError(f"{run}: {len(scored)} of its numbered checkpoints were saved at an evaluation (with a "
                          f"valid {task.main_metric}), {count} asked for")
    from seqcli.metrics import HIGHER

    scored.sort(key=lambda c: c.metrics[task.main_metric], reverse=task.direction(task.main_metric) == HIGHER)
    return scored[:count]


def average(chosen: list[Checkpoint]) -> Checkpoint:
    """The newest checkpoint's record with the mean of every floating-point tensor of the
    models (others, such as counters, from the newest); the same recipe, fields and tensor
    shapes are required."""
    from seqcli.recipe.changes import unsafe

    newest = chosen[-1]
    for other in chosen[:-1]:  # a resumed run's checkpoints may differ in what resume may change
        if unsafe(other.recipe.to_data(), newest.recipe.to_data()) or other.fields != newest.fields:
            raise CheckpointError(f"{other.path} and {newest.path}: trained from different recipes or data; only "
                                  f"checkpoints of one run can be averaged")
        if {k: tuple(v.shape) for k, v in other.model.items()} != {k: tuple(v.shape) for k, v in newest.model.items()}:
            raise CheckpointError(f"{other.path} and {newest.path}: their models differ in shape")
    model = {}
    for name, tensor in newest.model.items():
        if tensor.is_floating_point():
            model[name] = torch.stack([c.model[name].double() for c in chosen]).mean(0).to(tensor.dtype)
        else:
            model[name] = tensor.clone()
    return dataclasses.replace(newest, model=model, optimizer=None, average=None, scheduler=None, rng=None, ranks=None,
                               carry=None, metrics=None, averaged=[c.step for c in chosen], path="", digest="")


def write(averaged: Checkpoint, output: str, force: bool, inputs: list[str]) -> Path:
    """Save it at `output` (replaced only with `force`; never one of the inputs)."""
    from seqcli.files import check_output

    from seqcli import runfolder

    folder = runfolder.of_checkpoint(Path(output).parent.resolve() / Path(output).name)
    if folder is not None and Path(output).parent.resolve().name == runfolder.CHECKPOINTS:
        raise SeqcliError(f"--output {output}: a run's own checkpoint folder ({folder.path}); an averaged "
                          f"checkpoint cannot resume and would change what the run samples from: write it beside "
                          f"the run, e.g. -o {folder.path / 'averaged.pt'}")
    path = check_output(output, "--output", replace=force, inputs=tuple(inputs))
    ckpt_io.save(averaged, path)
    return path
