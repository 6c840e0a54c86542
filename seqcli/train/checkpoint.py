"""Self-contained checkpoints: written atomically, read without running pickled code.

A checkpoint is a dict of tensors and plain data (the resolved recipe, vocabularies, plugin
names and versions, optimizer/scheduler/RNG states, counters), so it is read with
weights_only=True and nothing in the file can execute code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from seqcli.errors import CheckpointError

FORMAT = "seqcli-checkpoint"
FORMAT_VERSION = 1


def save(obj: dict, path: Path) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place:
    a crash mid-save leaves the previous file intact."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **obj}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def find(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file, or the `which` ('best' or 'last') checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        folder = path / "checkpoints"
        for name in (which, "last") if which == "best" else (which,):
            if (folder / f"{name}.pt").is_file():
                return folder / f"{name}.pt"
        raise CheckpointError(f"{path}: no {which} checkpoint in this directory (looked in {folder})")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path


def load(path: str | Path, which: str = "best", map_location="cpu") -> dict:
    """Read a checkpoint; a missing, truncated, foreign or code-carrying file is a one-line
    CheckpointError."""
    file = find(path, which)
    try:
        obj = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle payloads, truncation and foreign files all land here
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            reason = "it holds pickled Python objects, which seqcli never loads (only tensors and plain data)"
        else:
            reason = "the file is truncated or corrupt"
        raise CheckpointError(f"{file}: cannot read checkpoint: {reason}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not a seqcli checkpoint")
    if obj.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{file}: written by a newer seqcli (format {obj['format_version']}); upgrade seqcli")
    obj["path"] = str(file)
    return obj
