"""The model card an export carries (its README.md): what the model does, the recipe, the data
it was trained on, the run's metrics, versions, how to run it, and its limits."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

KINDS = {
    "generator": "writes text, one token at a time, continuing a prime (a language model)",
    "writer": "writes an output sequence for each input (greedy, sampled, or by beam search)",
    "labels": "gives each input a label, with its probability",
    "tags": "gives every step of each input a tag",
    "values": "predicts numbers from each input sequence",
    "image": "draws an image of each class it is given",
}
EXAMPLES = {
    "generator": 'python run.py --prime "The " --length 200 --temperature 0.8 --seed 1',
    "writer": 'python run.py --input "an input" --beam-size 4',
    "labels": 'python run.py --input "an input" --n-best 3',
    "tags": 'python run.py --input "an input"',
    "values": 'python run.py --input "1 2; 3 4"',
    "image": "python run.py --input CLASS",
}


def model_card(ckpt, loaded, exported, run: Path, fmt: str, test: bool, say, quantized=None) -> str:
    """`quantized`: (the float export's folder, the int8 one), for an int8 export."""
    recipe = ckpt.recipe
    data, reason = _data(loaded, test, say)
    lines = [f"# {recipe.task.name}: {recipe.description or 'a model trained with seqcli'}", "",
             f"Exported by seqcli {__import__('seqcli').__version__} on {time.strftime('%Y-%m-%d')} from "
             f"`{ckpt.path}` (step {ckpt.step}, epoch {ckpt.epoch}), as {'ONNX' if fmt == 'onnx' else 'torch.export'} "
             f"graphs." + (f" Its weights are the mean of the run's checkpoints of steps "
                           f"{', '.join(map(str, ckpt.averaged))} (`seqcli average`)." if ckpt.averaged else "")
             + (f" Its weights are an exponential moving average (train.ema {recipe.train.ema})."
                if recipe.train.ema and not ckpt.averaged else ""), "", "## What it does", "",
             f"It {KINDS[exported.kind]}. Task `{recipe.task.name}`"
             f"{': ' + _first(type(loaded.task)).rstrip('.') if _first(type(loaded.task)) else ''}; cell `{recipe.cell.name}`; "
             f"{sum(p.numel() for p in loaded.model.parameters()):,} parameters.", ""]
    lines += _usage(exported, fmt, loaded)
    lines += _data_section(loaded, ckpt)
    lines += _metrics(run, ckpt, loaded, data, reason, say)
    if quantized is not None:
        lines += _quantized(loaded, exported, data, reason, quantized, say)
    lines += _limits(loaded, exported, data, reason)
    lines += ["## Recipe", "", "The resolved recipe it was trained with (every default filled in):", "", "```yaml",
              recipe.to_yaml().rstrip(), "```", ""]
    lines += _versions(ckpt, fmt)
    return "\n".join(lines) + "\n"


def _first(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _usage(exported, fmt: str, loaded) -> list[str]:
    needs = "numpy and onnxruntime" if fmt == "onnx" else "numpy and torch"
    lines = ["## How to run it", "", "```bash", "pip install -r requirements.txt", EXAMPLES[exported.kind],
             "python run.py --help                 # the options, with the defaults it was trained with", "```", "",
             f"`run.py` needs {needs} (and `tokenizers` for a subword vocabulary); it decodes as seqcli does. "
             f"In Python: `from run import Model; Model('.').{'generate(prime=...)' if exported.kind == 'generator' else 'predict([...])'}`.",
             "", "## How to serve it", "", "```bash", "pip install -r requirements-serve.txt",
             "python serve.py                      # http://127.0.0.1:8000/: a page to try it; the API at /docs",
             "docker build -t my-model . && docker run --rm -p 8000:8000 my-model", "```", "",
             "`serve.py` is `seqcli serve` without torch or seqcli: the same endpoints (`POST /v1/predict`"
             + (", `POST /v1/generate` with streaming" if exported.kind == "generator" else "")
             + ", `GET /v1/model`, `/health`, `/metrics`), limits and batching, on run.py's model "
             "(`python serve.py --help` lists its bounds).",
             "", "The graphs (in `model/`), for use from other languages:", "", "| graph | inputs | outputs |",
             "|---|---|---|"]
    for graph in exported.graphs:
        shown = ", ".join(f"{name} {_shape(t, graph.dynamic.get(name, {}))}" for name, t in graph.inputs.items())
        lines.append(f"| {graph.name} | {shown} | {', '.join(graph.outputs)} |")
    lines += ["", "Time-major: sequences are (time, batch, ...); ids are int64, values float32. "
              "`config.json` says how the graphs are used (`kind`, `use`).", ""]
    lines += _options(exported, loaded)
    if exported.config.get("copy"):
        lines += ["Copy attention: `copy` holds each source position's output id (the word's id in the target "
                  "vocabulary, or, for a word it lacks, the vocabulary's size plus the word's first position in "
                  "the source), and `logits` score the target vocabulary and then those extra ids; `run.py` works "
                  "them out and writes a copied word as the input had it.", ""]
    return lines


def _options(exported, loaded) -> list[str]:
    """Which of the task's sample options run.py applies, and which it does not."""
    from seqcli import inference
    from seqcli.api import INPUTS
    from seqcli.export.run import applied as runner_applies

    task = type(loaded.task)
    pictures = inference.sample_outputs(task)
    options = [p for p in inference.sample_parameters(task) if p not in pictures and p != INPUTS]
    applied = set(runner_applies(exported.kind))
    missing = [p for p in options if p not in applied]
    lines = []
    if options:
        taken = [p for p in options if p in applied]
        lines.append("`run.py` applies the options " + ", ".join(f"`{p}`" for p in taken) + "." if taken else
                     "`run.py` takes no options of the task.")
    if missing:
        set_here = {k: v for k, v in loaded.recipe.sample.items() if k in missing}
        lines[-1] += (" Not applied by `run.py`: " + ", ".join(f"`{p}`" for p in missing) + " (the task's own; "
                      "`seqcli sample` applies them, and the export's outputs are what the model gives without "
                      "them" + (f"; the recipe sets {', '.join(f'{k}: {v}' for k, v in set_here.items())}, which "
                                f"run.py ignores" if set_here else "") + ").")
    if pictures:
        lines.append("Pictures (" + ", ".join(f"`{p}`" for p in pictures) + ") are drawn by `seqcli sample` only.")
    return [" ".join(lines), ""] if lines else []


def _shape(tensor, dynamic: dict) -> str:
    dims = [dynamic.get(i, str(n)) for i, n in enumerate(tensor.shape)]
    return f"({', '.join(dims)}) {str(tensor.dtype).replace('torch.', '')}"


def _data(loaded, test: bool, say):
    """The run's data, read again (for the test metrics and the lengths seen), or the reason why not."""
    from seqcli import build

    recipe, packages = loaded.checkpoint.recipe, loaded.packages
    if not test:
        return None, "not asked for (--no-test)"
    try:
        build.check_stored_data(recipe, packages)
        say("export: reading the run's data again (test metrics, lengths)", highlight=False)
        return build.data(recipe, packages), None
    except Exception as exc:  # noqa: BLE001 - the data is gone, moved or changed: the card says so
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _data_section(loaded, ckpt) -> list[str]:
    from seqcli import build
    from seqcli.files import sha256_of

    lines = ["## Data", "", f"Dataset `{ckpt.recipe.dataset.name}`."]
    files = build.data_files(ckpt.recipe, loaded.packages)
    if files:
        lines += ["", "| key | file | bytes | SHA-256 |", "|---|---|---|---|"]
        for key, path in files.items():
            try:
                lines.append(f"| {key} | `{Path(path).name}` | {Path(path).stat().st_size:,} | `{sha256_of(path)}` |")
            except OSError:
                lines.append(f"| {key} | `{Path(path).name}` | (not found here) | |")
    else:
        lines.append("Its examples are generated or bundled (no data files).")
    sizes = {k: v for k, v in ckpt.data_info.items() if k.endswith(("_examples", "_tokens"))}
    if sizes:
        lines += ["", "Split sizes: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sizes.items()) + "."]
    return lines + [""]


def _metrics(run: Path, ckpt, loaded, data, reason, say) -> list[str]:
    lines = ["## Metrics", ""]
    from seqcli import runfolder

    folder = runfolder.of_checkpoint(run) or runfolder.of_checkpoint(ckpt.path)
    records = folder.validation_records() if folder is not None else []
    best = ckpt.best.step if ckpt.best else ckpt.step
    chosen = next((r for r in records if r.get("step") == best), records[-1] if records else None)
    if chosen is not None:
        lines += [f"Validation, at the checkpoint exported (step {chosen['step']}; evaluations in the run: "
                  f"{len(records)}):", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_number(v)} |" for k, v in chosen.items() if k not in ("step", "split")]
    elif ckpt.metrics:
        lines += ["Validation, at the checkpoint exported:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_number(v)} |" for k, v in ckpt.metrics.items()]
    else:
        lines.append("No validation record was found beside the checkpoint.")
    lines.append("")
    if data is not None and "test" in data.splits:
        from seqcli.train.stepper import evaluate

        say("export: evaluating on the test split", highlight=False)
        scores = evaluate(loaded.task, loaded.model, data, "test", ckpt.recipe.train)
        lines += ["Test split, evaluated at export:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_number(v)} |" for k, v in scores.items()]
    else:
        why = reason or "the dataset has no test split"
        lines.append(f"Not evaluated on a test split: {why}.")
    return lines + [""]


def _quantized(loaded, exported, data, reason, folders, say) -> list[str]:
    """What int8 cost, measured on the test split through run.py: float graphs against int8."""
    from seqcli.export import quantize

    say("export: measuring int8 against float on the test split", highlight=False)
    measured = quantize.cost(*folders, loaded, exported, data)
    lines = ["## Quantised: int8", "", "The matrix products' weights are int8 with a scale (onnxruntime's dynamic "
             "quantisation; each activation is quantised by its own range as it is computed); the rest is float. "
             "The float weights are not in this folder: export without `--quantize` for them.", ""]
    if not measured:
        why = reason if data is None else "its inputs have no text form run.py takes, or there is no test split"
        return lines + [f"Its cost was not measured here ({why}).", ""]
    lines += ["On the test split, through run.py (float graphs against these):", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {_number(v)} |" for k, v in measured.items()]
    return lines + [""]


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _limits(loaded, exported, data, reason) -> list[str]:
    from seqcli.vocab import Labels, Numeric, Vocab

    lines = ["## Limits", ""]
    inputs = {exported.config.get("input"), exported.config.get("field") if exported.kind == "generator" else None}
    outside = ("; a word outside it is read as <unk> and can be copied to the output (copy attention)"
               if exported.config.get("copy") else "; an input with tokens outside it is refused")
    for name, field in loaded.fields.items():
        if isinstance(field, Vocab):
            lines.append(f"- `{name}`: a {field.level}-level vocabulary of {len(field):,} tokens, learnt from the "
                         f"training split{outside if name in inputs else ''}.")
        elif isinstance(field, Labels):
            lines.append(f"- `{name}`: {len(field)} labels: {', '.join(field.names[:20])}"
                         f"{' ...' if len(field) > 20 else ''}.")
        elif isinstance(field, Numeric):
            lines.append(f"- `{name}`: {field.dim} numbers per step, scaled by the training split's mean and standard "
                         f"deviation{f'; {field.steps} steps' if field.steps else ''}.")
    if data is not None and isinstance(data.splits.get("train"), list) and data.splits["train"]:
        longest: dict[str, int] = {}
        for example in data.splits["train"]:
            for key, value in example.items():
                if hasattr(value, "dim") and value.dim() >= 1:
                    longest[key] = max(longest.get(key, 0), int(value.shape[0]))
        lines.append("- Longest sequences in training: " + ", ".join(f"`{k}` {v} steps" for k, v in longest.items())
                     + "; much longer inputs are outside what it learnt.")
    elif exported.kind == "generator":
        lines.append(f"- Trained on chunks of {loaded.checkpoint.recipe.train.seq_len} tokens; it reads and writes "
                     f"any length.")
    elif reason:
        lines.append(f"- Lengths seen in training: unknown here ({reason}).")
    lines += ["- Sampling in run.py draws from numpy's generator: the same `--seed` gives the same output from "
              "run to run, not the same output as `seqcli sample` (torch's generator). Greedy and beam search "
              "outputs are the same as seqcli's.", ""]
    return lines


def _versions(ckpt, fmt: str) -> list[str]:
    import importlib.metadata

    import torch

    lines = ["## Versions", "", f"- Trained with seqcli {ckpt.seqcli_version} (plugin API {ckpt.api_version}); "
             f"exported with seqcli {__import__('seqcli').__version__}, torch {torch.__version__}"]
    for package in (("onnx", "onnxruntime", "onnxscript") if fmt == "onnx" else ()):
        try:
            lines[-1] += f", {package} {importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            pass
    lines[-1] += "."
    for kind, record in ckpt.plugins.items():
        lines.append(f"- {kind} `{record.name}` from {record.package} {record.version}")
    return lines + [""]
