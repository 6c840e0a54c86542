"""What each field of a checkpoint's training state must be: one check per field, giving
what is wrong in a few words (None: nothing), which `Checkpoint.from_state` reports in one
line naming the file and the field; and the move of older formats' fields to where they live
now."""

from __future__ import annotations

import math

import torch


MAX_DEPTH = 64


def too_deep(obj) -> bool:
    stack = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
    return False


def short(value) -> str:
    text = repr(value) if not isinstance(value, torch.Tensor) else f"a tensor of shape {tuple(value.shape)}"
    return text if len(text) <= 80 else text[:77] + "..."


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def carry(value, depth: int = 0) -> str | None:
    """What a task hands from one batch to the next: tensors, in tuples or lists."""
    if isinstance(value, torch.Tensor):
        return None if not value.is_floating_point() or torch.isfinite(value).all() else "holds NaN or infinity"
    if isinstance(value, (list, tuple)) and depth < 4:
        return next((p for p in (carry(v, depth + 1) for v in value) if p), None)
    if value is None and depth:
        return None
    return f"expected tensors (in tuples or lists), got {short(value)}"


def rng(value) -> str | None:
    if not isinstance(value, dict) or "torch" not in value or "python" not in value:
        return "must hold the 'torch' and 'python' random states"
    t = value["torch"]
    if not (isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1
            and t.numel() == torch.get_rng_state().numel()):
        return f"torch: not a CPU generator's state ({short(t)})"
    py = value["python"]
    if not (isinstance(py, (list, tuple)) and len(py) == 3 and py[0] == 3 and isinstance(py[1], (list, tuple))
            and len(py[1]) == 625 and all(count(v) and v < 2**32 for v in py[1]) and py[1][-1] <= 624
            and (py[2] is None or number(py[2]))):
        return "python: not a random.getstate() of Python 3"
    cuda = value.get("cuda")
    if cuda is not None and not (isinstance(cuda, (list, tuple)) and all(
            isinstance(c, torch.Tensor) and c.dtype == torch.uint8 and c.dim() == 1 for c in cuda)):
        return "cuda: not a list of CUDA generator states"
    return None


def ranks(value) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a list with one entry per process"
    for i, rank in enumerate(value):
        if not isinstance(rank, dict) or "rng" not in rank:
            return f"{i}: must hold the process's 'carry' and 'rng'"
        problem = rng(rank["rng"]) or (carry(rank.get("carry")) if rank.get("carry") is not None else None)
        if problem:
            return f"{i}: {problem}"
    return None


def best(value) -> str | None:
    if not (isinstance(value, dict) and isinstance(value.get("metric"), str) and number(value.get("value"))
            and count(value.get("step")) and count(value.get("stale", 0))):
        return f"must be {{metric, value, step, stale}}, got {short(value)}"
    return None


def metrics(value) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, (str, int, float)))
                                              for k, v in value.items()):
        return "must map metric names to numbers"
    return None


def optimizer(value) -> str | None:
    """torch's optimizer state_dict: {'state': {index: {name: tensor or number}}, 'param_groups'}."""
    if not isinstance(value, dict) or not isinstance(value.get("state"), dict) or \
            not isinstance(value.get("param_groups"), list):
        return "must be an optimizer's state ('state' and 'param_groups')"
    for index, entry in value["state"].items():
        if not count(index) or not isinstance(entry, dict) or not all(
                isinstance(k, str) and (isinstance(v, torch.Tensor) or number(v)) for k, v in entry.items()):
            return f"state {short(index)}: must map names to tensors or numbers"
    for i, group in enumerate(value["param_groups"]):
        if not isinstance(group, dict) or not isinstance(group.get("params"), list) or \
                not all(count(p) for p in group["params"]):
            return f"param_groups.{i}: must list parameter indices"
        if not all(isinstance(k, str) and (v is None or isinstance(v, (bool, str)) or number(v) or
                                           (isinstance(v, (list, tuple)) and all(number(x) for x in v)))
                   for k, v in group.items() if k != "params"):
            return f"param_groups.{i}: options must be numbers"
    return None


def average(value) -> str | None:
    from seqcli.optim import AVERAGES

    if not isinstance(value, dict) or value.get("kind") not in AVERAGES or "state" not in value:
        return f"must be {{kind, state}} with kind one of {', '.join(AVERAGES)}"
    return AVERAGES[value["kind"]].state_problem(value["state"])


def average_of_format_2(obj: dict) -> dict:
    """Formats 1 and 2 kept the weight average's state inside the optimizer's state dict, under
    its kind ("ema" or "ntasgd"): moved to the `average` field."""
    optimizer = obj.get("optimizer")
    if not isinstance(optimizer, dict):
        return obj
    from seqcli.optim import AVERAGES

    kinds = [k for k in AVERAGES if k in optimizer]
    if not kinds:
        return obj
    kind = kinds[0]  # train.ema beside ntasgd is refused by the recipe check
    return {**obj, "optimizer": {k: v for k, v in optimizer.items() if k not in kinds},
            "average": {"kind": kind, "state": optimizer[kind]}}
