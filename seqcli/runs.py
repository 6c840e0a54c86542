"""One training run, from a checked recipe to a run directory."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from seqcli.errors import SeqcliError
from seqcli.recipe.resolve import Recipe


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
            raise SeqcliError(f"run directory {path} already exists and is not empty; "
                              f"choose another --run-dir (nothing in it was changed)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqcliError(f"cannot create run directory {path}: {exc.strerror}") from None
    return path


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


def train(recipe: Recipe, run_dir: Path, console: Console) -> dict:
    """Load the data, build the model, train, evaluate, and write a sample if the task has one."""
    import torch

    from seqcli import build
    from seqcli.train.memory import keep_freed_memory
    from seqcli.train.progress import reporter_for
    from seqcli.train.trainer import Trainer, pick_device, seed_everything

    keep_freed_memory()
    config = recipe.train_config()
    pick_device(config.device)  # a device that is not here fails before any work
    (run_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    seed_everything(config.seed)
    started = time.perf_counter()
    data = build.dataset(recipe.data).load()
    task = build.task(recipe.data)
    model = build.model(task, data, recipe.data)
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
    trainer = Trainer(task, model, data, config, run_dir, meta, reporter_for(console, config.log_every))
    console.print(f"training on {trainer.device} for {config.max_steps} steps", highlight=False)
    metrics = trainer.fit()
    options = dict(recipe.data.get("sample", {}))
    if "inputs" not in options or options["inputs"]:  # tasks that need inputs sample only when given some
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
