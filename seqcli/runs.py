"""Training runs: start one from a checked recipe, or resume one from its run directory."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import time
from pathlib import Path

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from seqcli import __version__
from seqcli.api import API_VERSION, INPUTS
from seqcli import runfolder
from seqcli.errors import CheckpointError, DataError, SeqcliError
from seqcli.runfolder import RunFolder
from seqcli.recipe.resolve import Recipe
from seqcli.recipe.changes import SAFE_CHANGES, differences, safe  # noqa: F401 (SAFE_CHANGES: documented)
from seqcli.train.checkpoint import Checkpoint, plugins_of


def choose_run_dir(run_dir: str | None, recipe: Recipe, root: str = "runs") -> Path:
    """The run directory a new run will write (`seqcli.runfolder.choose`)."""
    stem = Path(recipe.source).stem.replace(" (stored recipe)", "")
    return runfolder.choose(run_dir, stem, recipe.to_yaml(), root)


def start(recipe: Recipe, run_dir: Path, console: Console, on_evaluation=None, restart: bool | None = None
          ) -> dict | None:
    """A new run into `run_dir` (from `choose_run_dir`), or, where a run with this recipe
    stopped before its first checkpoint (`restart`; found out when None), that run trained
    again from the start."""
    if RunFolder(run_dir).unstarted() if restart is None else restart:
        return resume(run_dir, recipe, [], False, console, on_evaluation)
    return train(recipe, run_dir, console, on_evaluation=on_evaluation)


@dataclass
class Prepared:
    """What the stages before training give: the data, the task and a model of its weights."""

    recipe: Recipe
    data: Any
    task: Any
    model: Any
    notes: list = field(default_factory=list)  # what preparing did that the start of training reports


def check(recipe: Recipe) -> None:
    """Stage 1: what can fail without reading data (the device, optional extras)."""
    from seqcli.train.device import pick_device

    pick_device(recipe.train.device)  # a device that is not here fails before any work
    if recipe.train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise SeqcliError("train.tensorboard: needs the tensorboard package: pip install 'seqcli[tensorboard]'")
    if recipe.train.mlflow is not None:
        from seqcli.tracking import require_mlflow

        require_mlflow()
        if recipe.train.mlflow.get("export"):
            from seqcli import export

            export.require("onnx")


def prepare(recipe: Recipe, packages: dict | None = None, fields: dict | None = None) -> Prepared:
    """Stages 2 and 3: the dataset's splits and fields, checked; the task; the model. With
    `fields`, the dataset encodes with those instead of learning its own (`Dataset.load_with`)."""
    from seqcli import build
    from seqcli.train.device import seed_everything

    seed_everything(recipe.train.seed)
    data = build.data(recipe, packages, fields)
    check_splits(data, recipe)
    task = build.task(recipe, packages)
    check_model_size(task, data, recipe, packages)
    return Prepared(recipe, data, task, build.model(task, data, recipe, packages))


def own_fields(ready: Prepared, resume: Checkpoint, recipe: Recipe, packages: dict | None, run_dir: Path) -> Prepared:
    """A resumed run trains with the vocabularies it started with. Learnt again from the same
    files, a subword vocabulary may come out otherwise (the unigram trainer is not
    deterministic): then the data is encoded with the checkpoint's own. Any other difference
    means the data files changed: refused."""
    from seqcli import build
    from seqcli.vocab import Subword

    def changed(data) -> list[str]:
        return [k for k in data.fields if k not in resume.fields or data.fields[k] != resume.fields[k]]

    differ = changed(ready.data)
    if differ and all(isinstance(resume.fields.get(k), Subword) for k in differ) and \
            resume.data_info.get("files_sha256") == build.data_digest(recipe, packages) is not None:
        ready = prepare(recipe, packages, fields=resume.fields)
        differ = changed(ready.data)
    if differ:
        raise CheckpointError(f"{run_dir}: the data's {', '.join(differ)} differ from the checkpoint's "
                              f"(the data files changed since the run started); cannot resume")
    return ready


def check_splits(data, recipe: Recipe) -> None:
    """Training needs a 'train' and a 'valid' split, from every dataset alike."""
    for split in ("train", "valid"):
        if split not in data.splits:
            raise DataError(f"dataset {recipe.dataset.name} gave no '{split}' split (it gave: "
                            f"{', '.join(data.splits) or 'none'}); training needs 'train' and 'valid' "
                            f"(built-in file datasets carve 'valid' from 'train' with valid_fraction)")


def train(recipe: Recipe, run_dir: Path, console: Console, resume: Checkpoint | None = None,
          packages: dict | None = None, fresh: bool = False, on_evaluation=None) -> dict:
    """A whole run, stage by stage: check, data and model, the run folder, training, the
    sample. Nothing is written before the data and the model are ready, and the run folder is
    locked while it is written."""
    import torch

    from seqcli.train import distributed
    from seqcli.train.memory import keep_freed_memory

    keep_freed_memory()
    from seqcli.train.threads import use_threads

    use_threads(recipe.train.threads)
    started = time.perf_counter()
    check(recipe)
    ready = prepare(recipe, packages)
    ranks = distributed.context()
    if ranks.active:
        torch.manual_seed(recipe.train.seed + 1_000_003 * ranks.rank)  # same initial weights, own dropout masks
    if resume is not None:
        ready = own_fields(ready, resume, recipe, packages, run_dir)
    else:  # a new run: word vectors from a file (model.embeddings), read before anything is written
        from seqcli.nn import pretrained

        ready.notes.extend(pretrained.load(ready.model, recipe.embeddings))
    if recipe.train.compile:
        from seqcli.nn.recurrent import compile_steps

        count = compile_steps(ready.model)
        ready.notes.append(f"train.compile: {count} step-by-step cells run their step through torch.compile" if count
                           else "train.compile: nothing to compile (every cell runs on a fused kernel)")
    with contextlib.ExitStack() as held:
        created = False
        folder = RunFolder(run_dir)
        if ranks.main and resume is None and not fresh:  # resume and restart hold the lock already
            created = not run_dir.exists()
            folder.make()
            held.enter_context(folder.lock())
            if folder.has_contents():
                raise SeqcliError(f"run directory {run_dir} already exists and is not empty; choose another --run-dir")
        try:
            return _train(recipe, run_dir, console, resume, packages, ready, started, on_evaluation)
        except Exception:
            if ranks.main and resume is None and not fresh and not folder.checkpoint("last").exists():
                folder.unmake(created)  # failed before its first checkpoint: nothing worth keeping
            raise


def _train(recipe: Recipe, run_dir: Path, console: Console, resume, packages, ready: Prepared, started: float,
           on_evaluation=None) -> dict:
    from seqcli import build
    from seqcli.train import distributed
    from seqcli.train.progress import reporter_for
    from seqcli.train.trainer import Interrupted, Trainer

    data, task, model = ready.data, ready.task, ready.model
    ranks = distributed.context()
    if ranks.main:
        RunFolder(run_dir).write_recipe(recipe.to_yaml())
    params = sum(p.numel() for p in model.parameters())
    console.print(f"data: {data.info.get('source', '?')}", highlight=False)
    console.print(f"      {describe_sizes(data)}; ready in {time.perf_counter() - started:.1f}s", highlight=False)
    console.print(f"model: {type(model).__name__} with {params:,} parameters; run directory {run_dir}",
                  highlight=False)
    for note in ready.notes:
        console.print(f"       {note}", highlight=False)
    info = {**data.info, "files_sha256": build.data_digest(recipe, packages)}  # what resume compares
    record = Checkpoint(recipe=recipe, plugins=plugins_of(recipe, packages), fields=data.fields, model={},
                        data_info=info, seqcli_version=__version__, api_version=API_VERSION)
    tracker = None
    if recipe.train.mlflow is not None and ranks.main:
        from seqcli.tracking import MLflow

        tracker = MLflow(**recipe.train.mlflow).start(run_dir, recipe, lambda text: console.print(text, highlight=False),
                                                      resume is not None)
    trainer = Trainer(task, model, data, recipe.train, run_dir, record, reporter_for(console, recipe.train.log_every),
                      resume, on_evaluation, sinks=[tracker] if tracker is not None else [])
    where = f"from step {trainer.step} " if resume is not None else ""
    processes = f" in {ranks.world} processes" if ranks.active else ""
    epochs = f" ({recipe.train.max_epochs} epochs of {trainer.per_epoch} steps)" if recipe.train.max_epochs else ""
    console.print(f"training on {trainer.device}{processes} {where}to step {trainer.total}{epochs}", highlight=False)
    try:
        metrics = trainer.fit()
        if ranks.main:
            final_sample(task, trainer.model, data.fields, recipe, run_dir, console)
    except BaseException as exc:
        if tracker is not None:
            tracker.close("KILLED" if isinstance(exc, (KeyboardInterrupt, Interrupted)) else "FAILED")
        raise
    if tracker is not None:
        track_artifacts(tracker, run_dir, recipe, console)
    console.print(f"done in {time.perf_counter() - started:.0f}s; checkpoints in {RunFolder(run_dir).checkpoints}; "
                  f"try: seqcli sample {run_dir}", highlight=False)
    return metrics


def track_artifacts(tracker, run_dir: Path, recipe: Recipe, console: Console) -> None:
    """The end of a tracked run: its recipe and sample (and, asked for, its export) as MLflow
    artifacts; the MLflow run closed."""
    import shutil
    import tempfile

    tracker.artifacts(RunFolder(run_dir).recipe, RunFolder(run_dir).samples)
    if recipe.train.mlflow.get("export"):
        from seqcli import export

        with tempfile.TemporaryDirectory() as tmp:
            try:
                folder = export.export(run_dir, Path(tmp) / "export", test=False)
            except SeqcliError as exc:
                console.print(f"warning: the model was not exported for mlflow: {exc}", highlight=False)
            else:
                tracker.artifacts(folder)
                shutil.rmtree(folder, ignore_errors=True)
    tracker.close("FINISHED")


def final_sample(task, model, fields: dict, recipe: Recipe, run_dir: Path, console: Console) -> None:
    """Stage 5: a sample with the recipe's `sample:` settings into samples.txt. An input the
    model cannot take is reported and skipped: it never turns a finished training into a
    failed command. Tasks that need inputs sample only when the recipe gives some."""
    import torch

    from seqcli import inference

    if INPUTS in recipe.sample and not recipe.sample[INPUTS]:
        return
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        console.print(f"sample skipped: the weights hold NaN or infinite values ({', '.join(broken[:3])}"
                      f"{' ...' if len(broken) > 3 else ''}); the run diverged", highlight=False)
        return
    # the recipe's settings (pictures left to `seqcli sample`), seeded by the run when unseeded
    given = {"seed": recipe.train.seed} if "seed" in recipe.sample and recipe.sample["seed"] is None else {}
    try:
        values = inference.sample_options(task, recipe, given)
    except SeqcliError as exc:
        console.print(f"sample skipped: {exc}", highlight=False)
        return
    inputs = values.get(INPUTS)
    try:
        lines = inference.run_sample(task, model, fields, values).lines
        pairs = list(zip(inputs, lines)) if inputs is not None else None
    except SeqcliError as exc:
        if not inputs:
            console.print(f"sample skipped: {exc}", highlight=False)
            return
        pairs = []
        for text in inputs:  # find the inputs the model cannot take
            try:
                pairs.append((text, inference.run_sample(task, model, fields, {**values, INPUTS: [text]}).lines[0]))
            except SeqcliError as one:
                console.print(f"sample input {text!r} skipped: {one}", highlight=False)
        if not pairs:
            return
    texts = [f"{i}\t{o}" for i, o in pairs] if pairs is not None else lines
    RunFolder(run_dir).write_samples("\n\n".join(texts) + "\n")
    console.rule("sample")
    console.print("\n".join(texts) if pairs is not None else texts[0], markup=False, highlight=False)
    console.rule()


def resume(run_dir: Path, recipe: Recipe | None, overrides: list[str], force: bool, console: Console,
           on_evaluation=None, threads: int | None = None) -> dict | None:
    """Continue a run from its last checkpoint. The recipe is the stored one (plus overrides)
    or the one given; a difference outside SAFE_CHANGES is refused unless `force`. The run
    folder is locked first: one process writes it at a time."""
    from seqcli.train import distributed

    run_dir, folder = Path(run_dir), RunFolder(run_dir)
    if not folder.recipe.is_file():
        if run_dir.is_dir() and (run_dir / runfolder.LOCK).is_file() and not folder.has_contents():
            raise CheckpointError(f"{run_dir}: the run stopped before it wrote its recipe; start it again with the "
                                  f"same seqcli run command")
        last_checkpoint(run_dir)  # not a run folder: say so before anything is written into it
    with folder.lock() if distributed.context().main else contextlib.nullcontext():
        return _resume(run_dir, recipe, overrides, force, console, on_evaluation, threads)


def _resume(run_dir: Path, recipe: Recipe | None, overrides: list[str], force: bool, console: Console,
            on_evaluation=None, threads: int | None = None) -> dict | None:
    from seqcli.recipe.load import Origins, apply_overrides
    from seqcli.train.checkpoint import stored_recipe

    folder = RunFolder(run_dir)
    if not folder.checkpoint("last").exists() and folder.recipe.is_file():
        return restart(run_dir, recipe, overrides, console, on_evaluation, threads)
    ckpt = last_checkpoint(run_dir)
    stored = ckpt.recipe.to_data()
    if recipe is None:
        data = copy.deepcopy(stored)
        apply_overrides(data, Origins(str(folder.recipe)), overrides)
        recipe = stored_recipe(data, ckpt.plugins, str(folder.recipe))
    if threads:
        recipe.train.threads = threads
    changes = differences(stored, recipe.to_data())
    unsafe = [c for c in changes if not safe(c[0])]
    for key, old, new in changes:
        console.print(f"recipe change: {key}: {old!r} -> {new!r}", highlight=False)
    if unsafe and not force:
        listed = "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in unsafe)
        raise SeqcliError(f"the recipe differs from the one {run_dir} was trained with ({listed}); "
                          f"resume with the same recipe, or pass --force to continue with the new one")
    done = finished(ckpt, recipe.train)
    if done:
        console.print(f"run {run_dir} is finished: {done}", highlight=False)
        if not folder.samples.exists():  # stopped between its last checkpoint and its sample
            from seqcli import inference

            loaded = inference.from_checkpoint(ckpt, recipe.train.device)  # where training sampled
            final_sample(loaded.task, loaded.model, loaded.fields, recipe, run_dir, console)
        return None
    packages = {kind: r.package for kind, r in ckpt.plugins.items()
                if getattr(recipe, kind).name.rpartition(":")[2] == r.name}
    from seqcli import build

    build.check_stored_data(recipe, packages)  # its files may have gone, or be a FIFO now: one line, no hang
    return train(recipe, Path(run_dir), console, resume=ckpt, packages=packages, on_evaluation=on_evaluation)


def in_process(recipe: Recipe | None, run_dir, resume_it: bool, force: bool, console: Console,
               overrides: list[str] = (), threads: int | None = None) -> None:
    """`seqcli run` or `seqcli resume` in this process: alone, or as one rank of a
    distributed run (the process group set up first and torn down after; rank 0 chooses the
    run folder and every rank trains in it; only rank 0 prints)."""
    from seqcli.train import distributed

    distributed.setup(recipe.train.device if recipe is not None else "auto")
    if not distributed.context().main:
        console = Console(quiet=True)
    try:
        if resume_it:
            resume(Path(run_dir), recipe, list(overrides), force, console, threads=threads)
        else:
            chosen = None
            if distributed.context().main:
                path = choose_run_dir(run_dir, recipe)
                chosen = (str(path), RunFolder(path).unstarted())
            path, restart = distributed.broadcast(chosen)  # every rank the same folder and the same decision
            start(recipe, Path(path), console, restart=restart)
    except BaseException:
        distributed.teardown(finished=False)
        raise
    distributed.teardown()


def finished(ckpt: Checkpoint, train) -> str | None:
    """Why a checkpoint's run needs no more training under the settings `train`, or None."""
    if train.max_steps is not None and ckpt.step >= train.max_steps:
        return (f"it has trained {ckpt.step} steps, train.max_steps is {train.max_steps}; "
                f"to train further, resume with train.max_steps=N (N > {ckpt.step})")
    if train.max_epochs is not None and ckpt.epoch >= train.max_epochs:
        return (f"it has trained {ckpt.epoch} epochs, train.max_epochs is {train.max_epochs}; "
                f"to train further, resume with train.max_epochs=N (N > {ckpt.epoch})")
    best = ckpt.best
    if ckpt.tally.stopped(train.patience):
        return (f"it stopped early at step {ckpt.step}: no better valid {best.metric} in {best.stale} "
                f"evaluations (train.patience is {train.patience}); to train further, raise train.patience")
    return None


def restart(run_dir: Path, recipe: Recipe | None, overrides: list[str], console: Console, on_evaluation=None,
            threads: int | None = None) -> dict:
    """A run stopped before its first checkpoint: trained again from the start, in place, from
    the recipe it stored (nothing it wrote before is worth keeping: no step is lost)."""
    from seqcli.recipe.resolve import load_recipe

    if recipe is None:
        recipe = load_recipe(str(RunFolder(run_dir).recipe), overrides)
    if threads:
        recipe.train.threads = threads
    console.print(f"{run_dir} stopped before its first checkpoint: training it from the start", highlight=False)
    RunFolder(run_dir).log().truncate(0)
    return train(recipe, run_dir, console, fresh=True, on_evaluation=on_evaluation)


def last_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint a run resumes from, or a one-line CheckpointError saying why not."""
    from seqcli.train import checkpoint

    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: not a run directory" if Path(run_dir).exists()
                              else f"{run_dir}: no such checkpoint file or run directory")
    return checkpoint.load(run_dir, "last")


def check_model_size(task, data, recipe: Recipe, packages: dict | None = None) -> None:
    """Refuse, before allocating it, a model whose training state would not fit in memory."""
    import torch

    from seqcli import build

    try:
        with torch.device("meta"):
            probe = build.model(task, data, recipe, packages)
    except SeqcliError:
        raise
    except Exception:  # a plugin model that cannot be built without memory is simply not checked
        return
    params = sum(p.numel() for p in probe.parameters())
    need = params * 4 * 4  # float32 weights, gradients and two optimizer moments
    try:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > free:
        raise SeqcliError(f"the model would have {params:,} parameters, {need / 2**30:,.1f} GiB to train with "
                          f"gradients and optimizer state, more than the {free / 2**30:,.1f} GiB of memory free; "
                          f"make model.hidden_size, model.embedding_size or model.num_layers smaller")


def describe_sizes(data) -> str:
    """'tokens train 1,000 / valid 50; vocabulary 80' or 'examples train 900 / valid 100; labels 10'."""
    parts = []
    for unit in ("tokens", "examples"):
        sizes = " / ".join(f"{k[: -len(unit) - 1]} {v:,}" for k, v in data.info.items() if k.endswith(f"_{unit}"))
        if sizes:
            parts.append(f"{unit} {sizes}")
    for name, values in data.fields.items():
        if hasattr(values, "__len__"):
            plural = name if name.endswith("s") else name + "s"
            parts.append(f"{name} vocabulary {len(values):,}" if hasattr(values, "tokens") else f"{len(values)} {plural}")
        elif hasattr(values, "dim"):
            parts.append(f"{name} {values.dim} value{'s' if values.dim > 1 else ''} per step")
    return "; ".join(parts)
