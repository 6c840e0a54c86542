"""`seqcli export`: a trained model as a folder that runs without seqcli.

    seqcli export runs/reverse -o exported/reverse          # ONNX (default) or --format pt2
    python exported/reverse/run.py --input "hello"          # numpy and onnxruntime alone

The folder holds:

    model/NAME.onnx (or .pt2)   the task's graphs (`Task.export`): the whole model, or the
                                pieces a decoding loop calls (a step; a start)
    config.json                 the task, how run.py uses the graphs, sizes, special ids, the
                                recipe's sample defaults
    fields/NAME.json            vocabularies, label sets, numeric scaling (a subword
                                vocabulary's tokenizer as NAME.tokenizer.json)
    model.safetensors           the weights (not in an int8 export: its graphs hold them)
    README.md                   a model card: what it does, the recipe, the data (SHA-256),
                                the run's metrics, versions, how to run it, its limits
    run.py, requirements.txt    the reference runner and what it needs

The folder is written into a temporary folder beside it and renamed into place: it is whole
or absent. Every graph is checked before that: onnx's checker, and its outputs against the
model's on the example inputs (within 1e-4).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

from seqcli.api import CONDITION, INPUTS
from seqcli.errors import CheckpointError, SeqcliError

FORMATS = ("onnx", "pt2")
TOLERANCE = 1e-4


def require(fmt: str) -> None:
    """The packages an export needs, or one line saying which extra to install."""
    if fmt not in FORMATS:
        raise SeqcliError(f"--format {fmt}: one of {', '.join(FORMATS)}")
    needed = ["safetensors"] + (["onnx", "onnxruntime", "onnxscript"] if fmt == "onnx" else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise SeqcliError(f"seqcli export --format {fmt} needs {', '.join(missing)}: pip install 'seqcli[export]'")


def check_folder(out: str | Path) -> Path:
    """The folder to write: absent, or an empty folder, somewhere seqcli can write."""
    out = Path(out)
    if out.name in ("", ".", "..") or Path(os.path.abspath(out)) == Path.cwd():
        raise SeqcliError(f"-o {out}: name the new folder to write (for example -o exported), not this one")
    if out.is_symlink():
        raise SeqcliError(f"-o {out}: is a link; name the folder itself (nothing was changed)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SeqcliError(f"-o {out}: exists and is not an empty folder; choose another (nothing was changed)")
    existing = next(p for p in out.absolute().parents if p.exists())  # missing folders above it are made
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SeqcliError(f"-o {out}: cannot write there ({existing} is not a writable folder)")
    return out


def export(run: str | Path, out: str | Path, fmt: str = "onnx", checkpoint: str = "best", test: bool = True,
           console=None, quantize: str | None = None) -> Path:
    """Write the export of `run` (a run directory or a checkpoint file; `checkpoint` is
    'best', 'last' or a checkpoint file) into the folder `out`; returns it. `quantize`:
    'int8' makes the graphs' matrix products int8 (`seqcli.export.quantize`)."""
    from seqcli import inference
    from seqcli.export import quantize as int8
    from seqcli.train import checkpoint as ckpt_io

    require(fmt)
    int8.check(quantize, fmt)
    out = check_folder(out)
    ckpt = ckpt_io.load(run, checkpoint) if checkpoint in ("best", "last") else ckpt_io.load(checkpoint)
    loaded = inference.from_checkpoint(ckpt)
    exported = exported_by(loaded)
    say = console.print if console is not None else (lambda *a, **k: None)
    from seqcli.files import temporary

    tmp = temporary(out.absolute())
    shutil.rmtree(tmp, ignore_errors=True)
    float_copy = tmp.with_name(tmp.name + "-float") if quantize else None  # what int8 is measured against
    try:  # where the export is written, made before any work: a place that cannot take it is one line now
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise SeqcliError(f"-o {out}: cannot write there ({exc.strerror or exc}; nothing was changed)") from None
    try:
        (tmp / "model").mkdir()
        graphs = {}
        for graph in exported.graphs:
            path = tmp / "model" / f"{graph.name}.{fmt}"
            say(f"export: {graph.name} ({', '.join(graph.inputs)} -> {', '.join(graph.outputs)})", highlight=False)
            (to_onnx if fmt == "onnx" else to_pt2)(graph, path, loaded)
            check(graph, path, fmt, loaded)
            graphs[graph.name] = {"file": f"model/{path.name}", "inputs": list(graph.inputs),
                                  "outputs": list(graph.outputs)}
        fields = write_fields(loaded.fields, tmp / "fields")
        if not quantize:  # an int8 folder's weights are its graphs'
            write_weights(loaded.model, tmp / "model.safetensors")
        config = {"format": "seqcli-export", "format_version": 1, "seqcli_version": __import__("seqcli").__version__,
                  "task": ckpt.recipe.task.name, "description": ckpt.recipe.description, "kind": exported.kind,
                  "use": exported.config, "graphs": graphs, "fields": fields, "sample": sample_defaults(ckpt),
                  "options": option_bounds(ckpt),
                  "state_shapes": [[int(t.shape[0]), int(t.shape[2])] for name, t in exported.graphs[0].inputs.items()
                                   if name.startswith("state")] if exported.kind == "generator" else None,
                  "served": served(ckpt, loaded, run), **({"quantized": quantize} if quantize else {})}
        (tmp / "config.json").write_text(json.dumps(config, indent=1, default=str), encoding="utf-8")
        write_programs(tmp, fmt, fields)
        if quantize:
            shutil.rmtree(float_copy, ignore_errors=True)
            shutil.copytree(tmp, float_copy)
            for graph in graphs.values():
                say(f"export: {graph['file']} to {quantize}", highlight=False)
                int8.quantize_graph(tmp / graph["file"])
        try_runner(tmp, exported, loaded)
        from seqcli.export.card import model_card

        (tmp / "README.md").write_text(model_card(ckpt, loaded, exported, Path(run), fmt, test, say,
                                                  (float_copy, tmp) if quantize else None), encoding="utf-8")
        if out.exists():
            out.rmdir()  # an empty folder given as -o: replaced by the whole export
        os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if float_copy is not None:
            shutil.rmtree(float_copy, ignore_errors=True)
        if disk_full(exc):
            free = shutil.disk_usage(tmp.parent).free
            raise SeqcliError(f"-o {out}: the disk is full ({free / 2**20:.1f} MiB free on {tmp.parent}); nothing was "
                              f"written") from None
        if isinstance(exc, OSError):
            raise SeqcliError(f"-o {out}: cannot write the export ({exc.strerror or exc}); nothing was written") \
                from None
        raise
    if float_copy is not None:
        shutil.rmtree(float_copy, ignore_errors=True)
    return out


SERVER = Path(__file__).resolve().parent.parent / "server"  # seqcli.server: copied whole, it imports no seqcli


def write_programs(folder: Path, fmt: str, fields: dict) -> None:
    """run.py, serve.py and the server beside them, what each needs (requirements.txt,
    requirements-serve.txt), and a Dockerfile that serves the folder without torch."""
    shutil.copyfile(Path(__file__).with_name("run.py"), folder / "run.py")
    shutil.copyfile(Path(__file__).with_name("serve.py"), folder / "serve.py")
    shutil.copytree(SERVER, folder / "server", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    needs = ["numpy>=1.24"] + (["onnxruntime>=1.18"] if fmt == "onnx" else ["torch>=2.1"]) + \
        (["tokenizers>=0.15"] if any(f.get("kind") == "subword" for f in fields.values()) else [])
    (folder / "requirements.txt").write_text("".join(f"{n}\n" for n in needs), encoding="utf-8")
    (folder / "requirements-serve.txt").write_text("".join(f"{n}\n" for n in SERVE_NEEDS + needs), encoding="utf-8")
    (folder / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    (folder / ".dockerignore").write_text("Dockerfile\n.dockerignore\nmodel.safetensors\n**/__pycache__\n",
                                            encoding="utf-8")


SERVE_NEEDS = ["fastapi>=0.110", "uvicorn[standard]>=0.29"]
PYTHON_IMAGE = "python:3.12-slim"
DOCKERFILE = f"""\
# The model served by serve.py on a slim Python, without torch or seqcli:
#   docker build -t my-model .
#   docker run --rm -p 8000:8000 my-model                    # then http://127.0.0.1:8000/
#   docker run --rm -p 8000:8000 my-model --allow-host models.example.com --workers 4
FROM {PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /model
COPY requirements-serve.txt .
RUN pip install --no-cache-dir -r requirements-serve.txt
COPY . .
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin model
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["python", "serve.py", "--host", "0.0.0.0", "--port", "8000"]
"""


def disk_full(exc: BaseException) -> bool:
    """Whether a failure, or what caused it, is a full disk (also where a library rewords it)."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def exported_by(loaded):
    """The task's `Exported`, or one line naming the plugin and what could not be exported."""
    from seqcli.api import EXPORT_KINDS, Exported

    with torch_quiet():
        try:
            exported = loaded.task.export(loaded.model, loaded.fields)
        except SeqcliError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's export method failing
            raise SeqcliError(f"cannot export: {describe(loaded, 'task')}'s export failed "
                              f"({root_cause(exc)})") from exc
    if exported is NotImplemented or exported is None:
        raise SeqcliError(f"cannot export: {describe(loaded, 'task')} has no export method (Task.export, plugin "
                          f"API 1.2); its runs are used with seqcli sample and seqcli.load")
    if not isinstance(exported, Exported) or exported.kind not in EXPORT_KINDS or not exported.graphs:
        raise SeqcliError(f"cannot export: {describe(loaded, 'task')}'s export gave no graphs of a kind run.py knows "
                          f"({', '.join(EXPORT_KINDS)})")
    check_config(exported, loaded)
    return exported


def check_config(exported, loaded) -> None:
    """The Exported's graphs and config are what run.py reads for its kind (EXPORT_CONFIG,
    EXPORT_GRAPHS), and the fields it names are the model's: one line naming what is not."""
    from seqcli.api import EXPORT_CONFIG, EXPORT_GRAPHS

    who, kind = f"{describe(loaded, 'task')}'s export", exported.kind
    names = [g.name for g in exported.graphs]
    missing = [g for g in EXPORT_GRAPHS[kind] if g not in names]
    if missing:
        raise SeqcliError(f"cannot export: {who} ({kind}) has no graph '{missing[0]}' (a {kind} needs: "
                          f"{', '.join(EXPORT_GRAPHS[kind])}; it gave: {', '.join(names)})")
    spec = EXPORT_CONFIG[kind]
    config = exported.config if isinstance(exported.config, dict) else {}
    needed = [k for k in spec if not k.endswith("?")]
    lacking = [k for k in needed if k not in config]
    if lacking:
        raise SeqcliError(f"cannot export: {who} ({kind}) lacks config key '{lacking[0]}' ({spec[lacking[0]]}; a "
                          f"{kind}'s config holds: {', '.join(k.rstrip('?') for k in spec)})")
    unknown = [k for k in config if k not in needed and f"{k}?" not in spec]
    if unknown:
        raise SeqcliError(f"cannot export: {who} ({kind}) has config key '{unknown[0]}', which run.py does not "
                          f"read (a {kind}'s config holds: {', '.join(k.rstrip('?') for k in spec)})")
    for key in ("field", "input", "labels", "target"):
        if key in config and config[key] not in loaded.fields:
            raise SeqcliError(f"cannot export: {who} ({kind}) names field '{config[key]}' as its {key}; the model's "
                              f"fields are: {', '.join(loaded.fields)}")
    try:
        json.dumps(config)
    except (TypeError, ValueError):
        raise SeqcliError(f"cannot export: {who} ({kind}) has a config that is not plain data (JSON)") from None


def example_inputs(exported, loaded) -> list[str]:
    """Inputs to try the runner on: the recipe's `sample: inputs`, else one made from the
    input field (a few of its tokens, zeros of its shape, its first label)."""
    from seqcli.vocab import Labels, Numeric

    given = [t for t in loaded.recipe.sample.get(INPUTS) or [] if isinstance(t, str) and t.strip()]
    if given:
        return given[:4]
    field = loaded.fields[exported.config["input" if exported.kind != "image" else "labels"]]
    if isinstance(field, Labels):
        return [field.names[0]]
    if isinstance(field, Numeric):  # a condition is one vector; a sequence, a few steps
        steps = 1 if exported.config["input"] == CONDITION else field.steps or 3
        rows, dim = exported.config.get("image") or [steps, field.dim]
        return ["; ".join(" ".join("0" for _ in range(dim)) for _ in range(rows))]
    ids = [i for i, t in enumerate(field.tokens) if not (t.startswith("<") and t.endswith(">"))][:3]
    return [field.decode(ids)]


def try_runner(folder: Path, exported, loaded) -> None:
    """The folder's run.py, loaded from the folder, decodes an example (a language model
    draws a few tokens): a config it cannot read is found here, before the folder is moved
    into place, not by the folder's first user."""
    import sys

    spec = importlib.util.spec_from_file_location(f"seqcli_export_trial_{os.getpid()}", folder / "run.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        model = module.Model(folder, 1)
        lines = model.sample(prime="", length=3) if exported.kind == "generator" else \
            model.predict(example_inputs(exported, loaded))
        if not lines or not all(isinstance(line, str) for line in lines):
            raise ValueError(f"it gave {lines!r}")
    except Exception as exc:  # noqa: BLE001 - whatever the runner meets, it is the export's fault
        raise SeqcliError(f"cannot export: the exported folder's run.py fails on an example input "
                          f"({type(exc).__name__}: {first_line(exc)}); {describe(loaded, 'task')}'s export is not "
                          f"what run.py reads for a '{exported.kind}' (nothing was written)") from exc
    finally:
        sys.modules.pop(spec.name, None)


def describe(loaded, kind: str) -> str:
    """"task 'regress' (package seqcli-fasta 0.1.0)"."""
    record = loaded.checkpoint.plugins.get(kind)
    name = getattr(loaded.checkpoint.recipe, kind).name
    return f"{kind} '{name}'" + (f" (package {record.package} {record.version})" if record else "")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def root_cause(exc: BaseException) -> str:
    """What an exporter's error comes down to: the innermost exception it was raised from
    (the ONNX exporter wraps torch.export's, which wraps the tracer's), as `Type: first line`."""
    import re

    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    text = re.sub(r"\x1b\[[0-9;]*m", "", first_line(exc))  # the exporters colour their words
    return f"{type(exc).__name__}: {text}"


@contextlib.contextmanager
def torch_quiet():
    """torch's exporters talk (progress lines, warnings about optional packages): silenced."""
    sink = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def dynamic_shapes(graph) -> tuple:
    """torch.export's dynamic_shapes for a Graph: one Dim per axis name, shared by the inputs,
    in the structure of the module's signature (inputs past its named ones go to its *args)."""
    import inspect

    import torch

    dims: dict[str, object] = {}
    specs = tuple({axis: dims.setdefault(name, torch.export.Dim(name)) for axis, name in graph.dynamic[key].items()}
                  if graph.dynamic.get(key) else None for key in graph.inputs)
    params = inspect.signature(graph.module.forward).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        named = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        specs = specs[:named] + (specs[named:],)
    return specs


def traced(graph, loaded, how):
    """Run an exporter; a failure is one line naming the cell or task it came from."""
    with torch_quiet():
        try:
            return how()
        except Exception as exc:  # noqa: BLE001 - torch.export's and the ONNX exporter's errors alike
            plugins = [describe(loaded, kind) for kind in ("cell", "task")
                       if getattr(loaded.checkpoint.plugins.get(kind), "package", "seqcli") != "seqcli"]
            who = " or ".join(plugins) if plugins else "the model"
            raise SeqcliError(f"cannot export graph '{graph.name}': {who} could not be traced "
                              f"({root_cause(exc)}; seqcli --debug export shows the exporter's whole report)") \
                from exc


def to_onnx(graph, path: Path, loaded) -> None:
    import torch

    traced(graph, loaded, lambda: torch.onnx.export(
        graph.module, tuple(graph.inputs.values()), str(path), dynamo=True, optimize=True, verbose=False,
        input_names=list(graph.inputs), output_names=list(graph.outputs), dynamic_shapes=dynamic_shapes(graph),
        external_data=False))


def to_pt2(graph, path: Path, loaded) -> None:
    import torch

    program = traced(graph, loaded, lambda: torch.export.export(graph.module, tuple(graph.inputs.values()),
                                                                dynamic_shapes=dynamic_shapes(graph)))
    torch.export.save(program, str(path))


def check(graph, path: Path, fmt: str, loaded) -> None:
    """The written graph is valid and computes what the model computes (on the example)."""
    import numpy as np
    import torch

    def arrays(out) -> list:
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]

    with torch.no_grad():
        expected = arrays(graph.module(*graph.inputs.values()))
    if fmt == "onnx":
        import onnx
        import onnxruntime

        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:  # noqa: BLE001 - onnx's checker errors
            raise SeqcliError(f"cannot export graph '{graph.name}': onnx's checker refused it ({first_line(exc)})") \
                from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {k: v.numpy() for k, v in graph.inputs.items()})
    else:
        program = torch.export.load(str(path)).module()
        with torch.no_grad():
            got = arrays(program(*graph.inputs.values()))
    for name, a, b in zip(graph.outputs, expected, got):
        if a.shape != b.shape or (a.dtype.kind == "f" and not np.allclose(a, b, atol=TOLERANCE, rtol=TOLERANCE)) or \
                (a.dtype.kind != "f" and not np.array_equal(a, b)):
            raise SeqcliError(f"cannot export graph '{graph.name}': its output '{name}' differs from the model's "
                              f"(by up to {np.abs(a.astype(float) - b.astype(float)).max():.3g}; "
                              f"{describe(loaded, 'cell')}, {describe(loaded, 'task')})")


def write_fields(fields: dict, folder: Path) -> dict:
    """Each field as JSON (a subword vocabulary's tokenizer in a file of its own)."""
    from seqcli.vocab import field_to_state

    folder.mkdir()
    written = {}
    for name, value in fields.items():
        state = field_to_state(value)
        if isinstance(state, dict) and state.get("kind") == "subword":
            (folder / f"{name}.tokenizer.json").write_text(state["model"], encoding="utf-8")
            state = {k: v for k, v in state.items() if k != "model"}
        try:
            text = json.dumps(state, ensure_ascii=False)
        except TypeError:
            raise CheckpointError(f"cannot export: field '{name}' is not plain data") from None
        (folder / f"{name}.json").write_text(text, encoding="utf-8")
        written[name] = {"kind": state.get("kind")} if isinstance(state, dict) else {}
    return written


def write_weights(model, path: Path) -> None:
    """The weights as safetensors (tied weights are written once for each name)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(path),
              metadata={"format": "pt", "producer": "seqcli"})


def sample_defaults(ckpt) -> dict:
    """The recipe's `sample:` values run.py starts from (pictures and inputs left out)."""
    from seqcli import inference

    pictures = inference.outputs(inference.sample_parameters(inference.task_class(ckpt)))
    return {k: v for k, v in ckpt.recipe.sample.items() if k not in pictures and k != INPUTS}


def option_bounds(ckpt) -> dict:
    """The task's sample options as JSON Schema (types and bounds, as `seqcli sample` checks
    them): run.py refuses what seqcli refuses. The inputs' default is the recipe's."""
    from seqcli import inference
    from seqcli.schema import options_schema

    params = inference.sample_parameters(inference.task_class(ckpt))
    given = {INPUTS: ckpt.recipe.sample[INPUTS]} if INPUTS in ckpt.recipe.sample else {}
    return options_schema(params, given, skip=set(inference.outputs(params)))


def served(ckpt, loaded, run) -> dict:
    """What serve.py says of the model (GET /v1/model) besides config.json's other keys: the
    sample method's help, the input's form, the checkpoint and its metrics."""
    import inspect

    from seqcli import inference

    return {"doc": inspect.getdoc(loaded.task.sample) or "",
            INPUTS: inference.input_form(loaded.fields, INPUTS in inference.sample_parameters(type(loaded.task))),
            "checkpoint": {"path": Path(ckpt.path).name, "step": ckpt.step, "epoch": ckpt.epoch,
                           "best": ckpt.best.to_state() if ckpt.best else None},
            "metrics": inference.checkpoint_metrics(ckpt, str(run))}
