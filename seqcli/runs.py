"""Training runs: start one from a checked recipe, or resume one from its run directory."""

from __future__ import annotations

import copy
import importlib.util
import os
import time
from pathlib import Path

from rich.console import Console

from seqcli.errors import CheckpointError, SeqcliError
from seqcli.recipe.resolve import Recipe

# Keys a resumed run may change without --force: they do not change what is being learnt.
SAFE_CHANGES = ("description", "sample.", "train.max_steps", "train.log_every", "train.eval_every",
                "train.eval_batches", "train.checkpoint_every", "train.keep_checkpoints", "train.nonfinite",
                "train.device", "train.precision", "train.tensorboard")


def new_run_dir(run_dir: str | None, recipe: Recipe, root: str = "runs") -> Path:
    """The run directory to create. An existing non-empty one is refused, never reused."""
    if run_dir is None:
        stem = Path(recipe.source).stem
        base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    else:
        path = Path(run_dir)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise SeqcliError(f"run directory {path} already exists and is not empty; choose another --run-dir, "
                              f"or continue it with --resume (nothing in it was changed)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqcliError(f"cannot create run directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise SeqcliError(f"run directory {path} is not writable")
    return path


def latest_run(root: str = "runs") -> Path:
    """The run directory under `root` whose last checkpoint is the newest."""
    runs = sorted(Path(root).glob("*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise CheckpointError(f"no runs with a checkpoint under {root}/; name the run directory to resume")
    return runs[-1].parent.parent


def differences(old, new, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            out += differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix[:-1], old, new)]


def train(recipe: Recipe, run_dir: Path, console: Console, resume: dict | None = None) -> dict:
    """Load the data, build the model, train (from scratch or from `resume`), evaluate, and
    write a sample if the task has one."""
    import torch

    from seqcli import build
    from seqcli.train.memory import keep_freed_memory
    from seqcli.train import distributed
    from seqcli.train.progress import reporter_for
    from seqcli.train.trainer import Trainer, pick_device, seed_everything

    keep_freed_memory()
    config = recipe.train_config()
    pick_device(config.device)  # a device that is not here fails before any work
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise SeqcliError("train.tensorboard: needs the tensorboard package: pip install 'seqcli[tensorboard]'")
    seed_everything(config.seed)
    started = time.perf_counter()
    data = build.dataset(recipe.data).load()
    task = build.task(recipe.data)
    check_model_size(task, data, recipe)
    model = build.model(task, data, recipe.data)
    ranks = distributed.context()
    if ranks.active:
        torch.manual_seed(config.seed + 1_000_003 * ranks.rank)  # same initial weights, own dropout masks
    if ranks.main:
        (run_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    params = sum(p.numel() for p in model.parameters())
    console.print(f"data: {data.info.get('source', '?')}", highlight=False)
    console.print(f"      {describe_sizes(data)}; ready in {time.perf_counter() - started:.1f}s", highlight=False)
    console.print(f"model: {type(model).__name__} with {params:,} parameters; run directory {run_dir}",
                  highlight=False)
    meta = {
        "recipe": recipe.data,
        "plugins": build.plugin_versions(recipe.data),
        "fields": build.fields_to_state(data.fields),
        "data_info": data.info,
    }
    if resume is not None:
        changed = [k for k in data.fields if build.fields_to_state({k: data.fields[k]}) != {k: resume["fields"].get(k)}]
        if changed:
            raise CheckpointError(f"{run_dir}: the data's {', '.join(changed)} differ from the checkpoint's "
                                  f"(the data files changed since the run started); cannot resume")
    trainer = Trainer(task, model, data, config, run_dir, meta, reporter_for(console, config.log_every), resume)
    where = f"from step {trainer.step} " if resume is not None else ""
    processes = f" in {ranks.world} processes" if ranks.active else ""
    console.print(f"training on {trainer.device}{processes} {where}to step {config.max_steps}", highlight=False)
    metrics = trainer.fit()
    options = dict(recipe.data.get("sample", {}))
    if ranks.main and ("inputs" not in options or options["inputs"]):  # tasks that need inputs sample only when given some
        if "seed" in options and options["seed"] is None:
            options["seed"] = config.seed
        with torch.no_grad():
            trainer.model.eval()
            texts = task.sample(trainer.model, data.fields, **options)
        if "inputs" in options:
            texts = [f"{i}\t{o}" for i, o in zip(options["inputs"], texts)]
        (run_dir / "samples.txt").write_text("\n\n".join(texts) + "\n", encoding="utf-8")
        console.rule("sample")
        console.print("\n".join(texts) if "inputs" in options else texts[0], markup=False, highlight=False)
        console.rule()
    console.print(f"done in {time.perf_counter() - started:.0f}s; checkpoints in {run_dir / 'checkpoints'}; "
                  f"try: seqcli sample {run_dir}", highlight=False)
    return metrics


def resume(run_dir: Path, recipe: Recipe | None, overrides: list[str], force: bool, console: Console) -> dict | None:
    """Continue a run from its last checkpoint. The recipe is the stored one (plus overrides)
    or the one given; a difference outside SAFE_CHANGES is refused unless `force`."""
    from seqcli.recipe.load import Origins, apply_overrides
    from seqcli.recipe.resolve import resolve

    ckpt = last_checkpoint(run_dir)
    stored = ckpt["recipe"]
    if recipe is None:
        data = copy.deepcopy(stored)
        origins = Origins(str(run_dir / "recipe.yaml"))
        apply_overrides(data, origins, overrides)
        recipe = resolve(data, origins)
    changes = differences(stored, recipe.data)
    unsafe = [c for c in changes if not any(c[0] == s or (s.endswith(".") and c[0].startswith(s)) for s in SAFE_CHANGES)]
    for key, old, new in changes:
        console.print(f"recipe change: {key}: {old!r} -> {new!r}", highlight=False)
    if unsafe and not force:
        listed = "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in unsafe)
        raise SeqcliError(f"the recipe differs from the one {run_dir} was trained with ({listed}); "
                          f"resume with the same recipe, or pass --force to continue with the new one")
    total = recipe.data["train"]["max_steps"]
    if ckpt["step"] >= total:
        console.print(f"run {run_dir} is finished: it has trained {ckpt['step']} steps, train.max_steps is {total}; "
                      f"to train further, resume with train.max_steps=N (N > {ckpt['step']})", highlight=False)
        return None
    return train(recipe, Path(run_dir), console, resume=ckpt)


def last_checkpoint(run_dir: Path) -> dict:
    """The checkpoint a run resumes from, or a one-line CheckpointError saying why not."""
    from seqcli.train import checkpoint

    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: not a run directory" if Path(run_dir).exists()
                              else f"{run_dir}: no such checkpoint file or run directory")
    return checkpoint.load(run_dir, "last")


def check_model_size(task, data, recipe: Recipe) -> None:
    """Refuse, before allocating it, a model whose training state would not fit in memory."""
    import torch

    from seqcli import build

    try:
        with torch.device("meta"):
            probe = build.model(task, data, recipe.data)
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
    for name, field in data.fields.items():
        if hasattr(field, "__len__"):
            plural = name if name.endswith("s") else name + "s"
            parts.append(f"{name} vocabulary {len(field):,}" if hasattr(field, "tokens") else f"{len(field)} {plural}")
        elif hasattr(field, "dim"):
            parts.append(f"{name} {field.dim} value{'s' if field.dim > 1 else ''} per step")
    return "; ".join(parts)
