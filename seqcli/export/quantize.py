"""`seqcli export --quantize int8`: the graphs' matrix products and embeddings with int8 weights.

Every layer is exported as a scan over its cell's step, with the input projection hoisted out
of it, so the matrix products of every cell (plugin cells too) are plain MatMul and Gemm
nodes, inside the scan's body or outside it. onnxruntime's dynamic quantisation turns each
one whose weight is a constant into an int8 product: the weights are stored as int8 with a
scale, and each activation is quantised on the fly by its own range (per tensor, per call).
Embedding tables (Gather) are stored as int8 and read back to float row by row. Everything
else (the gates' nonlinearities, attention's softmax, the scores) stays float.

What it costs is measured, not assumed: `cost` runs the float graphs and the int8 ones
through the folder's own run.py on the test split, and the model card reports it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import sys
from pathlib import Path

from seqcli.errors import SeqcliError

QUANTIZE = ("int8",)
SAMPLE = 2000  # test inputs (or, for a language model, test tokens) the cost is measured on


def quantize_graph(path: Path) -> None:
    """The ONNX graph at `path`, its MatMul, Gemm and Gather weights made int8, in place."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_name(path.stem + ".int8.onnx")
    quiet = logging.getLogger()
    level, quiet.level = quiet.level, logging.ERROR  # "consider pre-processing": a remark, not a problem
    try:
        quantize_dynamic(path, out, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm", "Gather"],
                         extra_options={"EnableSubgraph": True})
    finally:
        quiet.level = level
    os.replace(out, path)


def runner(folder: Path):
    """The folder's run.py `Model`, one thread (the comparison is of outputs, not speed)."""
    spec = importlib.util.spec_from_file_location(f"seqcli_quantize_{abs(hash(str(folder)))}", folder / "run.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.Model(folder, 1)
    finally:
        sys.modules.pop(spec.name, None)


def cost(float_folder: Path, int8_folder: Path, loaded, exported, data) -> dict:
    """What int8 changes on the test split: for a language model, the perplexity of the
    first test tokens; for a writer, exact match; for labels, accuracy; for every kind that
    takes text inputs, the share of outputs that are the same. {} when it cannot be measured
    here (no test split, inputs that cannot be written back as text)."""
    if data is None or "test" not in data.splits:
        return {}
    both = runner(float_folder), runner(int8_folder)
    if exported.kind == "generator":
        return {"tokens": min(SAMPLE, len(data.splits["test"])),
                **{f"perplexity_{name}": perplexity(model, data.splits["test"][:SAMPLE].tolist())
                   for name, model in zip(("float", "int8"), both)}}
    pairs = text_pairs(loaded, exported, data.splits["test"][:SAMPLE])
    if not pairs:
        return {}
    inputs, references = [p[0] for p in pairs], [p[1] for p in pairs]
    outputs = [[p["hypotheses"][0]["output"] for p in model.predictions(inputs)] for model in both]
    out = {"inputs": len(inputs), "same_outputs": sum(a == b for a, b in zip(*outputs)) / len(inputs)}
    metric = {"writer": "exact_match", "labels": "accuracy"}.get(exported.kind)
    if metric is not None:
        for name, got in zip(("float", "int8"), outputs):
            out[f"{metric}_{name}"] = sum(g == r for g, r in zip(got, references)) / len(inputs)
    return out


def perplexity(model, ids: list[int]) -> float:
    """A language model's perplexity on `ids`, one token at a time through the step graph."""
    import numpy as np

    step, use = model.graphs["step"], model.use
    states = {name: np.zeros((shape[0], 1, shape[1]), dtype=np.float32)
              for name, shape in zip(use["states"], model.config["state_shapes"])}
    total, previous = 0.0, use["start"]
    for token in ids:
        out = step(token=np.array([previous], dtype=np.int64), **states)
        logits = out["logits"][0].astype(np.float64)
        top = logits.max()
        total += top + math.log(np.exp(logits - top).sum()) - logits[token]
        states = {name: out[f"next_{name}"] for name in states}
        previous = token
    return math.exp(total / max(len(ids), 1))


def text_pairs(loaded, exported, examples) -> list[tuple[str, str]]:
    """The test examples as a user gives them to run.py, with the reference output: a writer's
    source text and target text, a classifier's input and label. [] for the kinds and fields
    that have no such text form."""
    from seqcli.vocab import Labels, Numeric, Vocab

    use, fields = exported.config, loaded.fields
    if exported.kind not in ("writer", "labels"):
        return []
    source = fields.get(use.get("input"))
    target = fields.get(use["field"] if exported.kind == "writer" else use["labels"])
    key = use.get("input")
    answer = "target" if exported.kind == "writer" else "label"
    pairs = []
    for example in examples:
        x, y = example.get(key), example.get(answer)
        if x is None or y is None:
            return []
        if isinstance(source, Vocab):
            text = source.decode(x.tolist())
        elif isinstance(source, Numeric) and not use.get("image"):
            text = "; ".join(" ".join(f"{v:.6g}" for v in row) for row in x.reshape(len(x), -1).tolist())
        else:
            return []
        if isinstance(target, Labels):
            reference = target.names[int(y)]
        elif isinstance(target, Vocab):
            reference = target.decode(y.tolist())
        else:
            return []
        pairs.append((text, reference))
    return pairs


def check(quantize: str | None, fmt: str) -> None:
    if quantize is None:
        return
    if quantize not in QUANTIZE:
        raise SeqcliError(f"--quantize {quantize}: one of {', '.join(QUANTIZE)}")
    if fmt != "onnx":
        raise SeqcliError(f"--quantize {quantize}: quantises ONNX graphs; give --format onnx (the default)")
    with contextlib.suppress(Exception):
        if importlib.util.find_spec("onnxruntime.quantization") is not None:
            return
    raise SeqcliError("--quantize int8 needs onnxruntime's quantization tools: pip install 'seqcli[export]'")
