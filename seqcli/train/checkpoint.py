"""Checkpoints: one typed record, written atomically, read without running pickled code.

`Checkpoint` owns every key of the file: `to_state()` is the only place that names them for
writing and `from_state()` the only place that reads them. A checkpoint holds tensors and
plain data (the resolved recipe, vocabularies, plugin names and versions, optimizer,
scheduler and RNG states, counters), so it is read with `torch.load(weights_only=True)` and
nothing in the file can execute code. On load every field is checked, the stored recipe
through the same validation as a recipe file, so a damaged or crafted file is one line.

Format history: 1 (seqcli 0.1): keys added over time (`position`, `window`, `ranks`,
`plugins`, `data_info`) may be missing; they are filled with what their absence meant.
2 (seqcli 0.2): every key present; `api_version` records the plugin API; `checksum`, a
SHA-256 of everything else, is verified on load, so flipped bits are caught. 3 (seqcli 0.6):
the weight average's state (train.ema, NT-ASGD) in a field of its own, `average`.

What each stored field must be is `seqcli.train.stored`'s to say.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seqcli.errors import CheckpointError, RecipeError, SeqcliError
from seqcli.train import stored
from seqcli.train.tally import Best, Tally

FORMAT = "seqcli-checkpoint"
FORMAT_VERSION = 3  # 3: the weight average's state in a field of its own (`average`)
KINDS = ("dataset", "task", "cell")


@dataclass
class PluginRecord:
    """Which package (and version) supplied one plugin."""

    name: str
    package: str
    version: str

    @property
    def qualified(self) -> str:
        return f"{self.package}:{self.name}"


def plugins_of(recipe, packages: dict | None = None) -> dict[str, PluginRecord]:
    """Which package (and version) provides each plugin the recipe uses (kind -> record)."""
    from seqcli import registry

    out = {}
    for kind in KINDS:
        info = registry.info(kind, getattr(recipe, kind).name, (packages or {}).get(kind))
        out[kind] = PluginRecord(info.name, info.package, info.version)
    return out


@dataclass
class Checkpoint:
    recipe: Any  # seqcli.recipe.resolve.Recipe, as the user wrote its plugin names
    plugins: dict[str, PluginRecord]  # kind -> record
    fields: dict[str, Any]  # field name -> Vocab, Labels, Numeric or plain data
    model: dict[str, torch.Tensor]
    data_info: dict = field(default_factory=dict)
    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of the current epoch already trained on
    carry: Any = None
    tally: Tally = field(default_factory=Tally)  # the loss window and the best result (`window`, `best`)
    metrics: dict | None = None
    rng: dict | None = None
    ranks: list | None = None
    optimizer: dict | None = None
    average: dict | None = None  # {kind, state}: train.ema's or NT-ASGD's (optim.Averaging.average_state)
    scheduler: dict | None = None
    seqcli_version: str = "?"
    api_version: str = "1.0"
    averaged: list[int] | None = None  # `seqcli average`: the steps of the checkpoints whose mean it holds
    path: str = ""  # the file it was read from
    digest: str = ""  # the SHA-256 of what was read (its identity, e.g. for `sample --continue`)

    @property
    def best(self) -> Best | None:
        return self.tally.best

    def to_state(self) -> dict:
        from seqcli.vocab import field_to_state

        window, best = self.tally.to_state()
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "seqcli_version": self.seqcli_version,
            "api_version": self.api_version, "recipe": self.recipe.to_data(),
            "plugins": {k: {"name": p.name, "package": p.package, "version": p.version} for k, p in self.plugins.items()},
            "fields": {k: field_to_state(v) for k, v in self.fields.items()}, "data_info": self.data_info,
            "model": self.model, "optimizer": self.optimizer, "average": self.average, "scheduler": self.scheduler,
            "step": self.step,
            "epoch": self.epoch, "position": self.position, "carry": self.carry, "window": window,
            "metrics": self.metrics, "best": best, "rng": self.rng, "ranks": self.ranks,
            **({"averaged": self.averaged} if self.averaged is not None else {}),
        }

    @classmethod
    def from_state(cls, obj, file: str) -> Checkpoint:
        """Check and migrate what `torch.load` gave; any problem is a one-line CheckpointError."""
        def bad(what: str) -> CheckpointError:
            return CheckpointError(f"{file}: damaged checkpoint: {what}")

        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise CheckpointError(f"{file}: not a seqcli checkpoint")
        version = obj.get("format_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad(f"format_version must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{file}: written by a newer seqcli (format {version}); upgrade seqcli")
        if stored.too_deep(obj):
            raise bad(f"values nested more than {stored.MAX_DEPTH} levels deep")
        digest = checksum(obj)
        if version >= 2:
            if not isinstance(obj.get("checksum"), str):
                raise bad("no checksum")
            if digest != obj["checksum"]:
                raise CheckpointError(f"{file}: damaged checkpoint: its contents do not match the checksum stored "
                                      f"with them (changed or corrupted since it was written)")
        if version == 1:
            obj = {"position": 0, "window": [0.0, 0], "ranks": None, "plugins": {}, "data_info": {},
                   "api_version": "1.0", **obj}
        if version <= 2:
            obj = stored.average_of_format_2(obj)
        missing = [k for k in ("recipe", "fields", "model", "step", "epoch") if k not in obj]
        if missing:
            raise bad(f"missing {', '.join(missing)}")
        counters = {}
        for key in ("step", "epoch", "position"):
            value = obj.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**62:
                raise bad(f"{key} must be a non-negative integer, got {value!r}")
            counters[key] = value
        plugins = obj.get("plugins") or {}
        records = {}
        if not isinstance(plugins, dict):
            raise bad("plugins must be a mapping")
        for kind, used in plugins.items():
            if kind not in KINDS or not isinstance(used, dict) or \
                    not all(isinstance(used.get(k), str) for k in ("name", "package", "version")):
                raise bad(f"plugins.{kind} must name the {kind}'s name, package and version")
            records[kind] = PluginRecord(used["name"], used["package"], used["version"])
        model = obj["model"]
        if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in model.items()):
            raise bad("model must map parameter names to tensors")
        for name, tensor in model.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise bad(f"the weights {name} hold NaN or infinite values")
        fields = obj["fields"]
        if not isinstance(fields, dict):
            raise bad("fields must be a mapping")
        from seqcli.vocab import field_from_state

        try:
            fields = {str(k): field_from_state(v) for k, v in fields.items()}
        except Exception as exc:  # a crafted vocabulary: wrong types, missing keys
            raise bad(f"fields: {type(exc).__name__}: {exc}") from None
        window = obj.get("window")
        if not (isinstance(window, (list, tuple)) and len(window) == 2 and stored.number(window[0])
                and stored.count(window[1]) and abs(window[0]) <= 1e15 * max(1, window[1])):
            raise bad(f"window must be [loss sum, steps], got {stored.short(window)}")
        for key in ("data_info", "scheduler"):
            if obj.get(key) is not None and not isinstance(obj[key], dict):
                raise bad(f"{key} must be a mapping")
        for key, check in (("carry", stored.carry), ("rng", stored.rng), ("ranks", stored.ranks), ("best", stored.best),
                           ("metrics", stored.metrics), ("optimizer", stored.optimizer), ("average", stored.average)):
            problem = check(obj.get(key)) if obj.get(key) is not None else None
            if problem:
                raise bad(f"{key}: {problem}")
        averaged = obj.get("averaged")
        if averaged is not None and not (isinstance(averaged, list) and averaged and all(stored.count(s) for s in averaged)):
            raise bad("averaged must list the steps of the checkpoints averaged")
        recipe = stored_recipe(obj["recipe"], records, file)
        return cls(recipe=recipe, plugins=records, fields=fields, model=model, data_info=obj.get("data_info") or {},
                   carry=obj.get("carry"), tally=Tally.from_state(window, obj.get("best")), metrics=obj.get("metrics"),
                   rng=obj.get("rng"), ranks=obj.get("ranks"), optimizer=obj.get("optimizer"), average=obj.get("average"),
                   scheduler=obj.get("scheduler"), seqcli_version=str(obj.get("seqcli_version", "?")),
                   api_version=str(obj.get("api_version", "1.0")), averaged=averaged, path=file, digest=digest,
                   **counters)

    def plugin_name(self, kind: str) -> tuple[str, str | None]:
        """(name, package) to load `kind` with: the package the checkpoint recorded."""
        choice = getattr(self.recipe, kind)
        record = self.plugins.get(kind)
        name = choice.name.partition(":")[2] if ":" in choice.name else choice.name
        return name, (record.package if record is not None else None)


#: how deep a checkpoint's plain data may nest (a recipe is at most 40 levels), checked
#: without recursion before anything walks it
def stored_recipe(data, records: dict[str, PluginRecord], file: str):
    """The recipe stored in a checkpoint, checked like a recipe file, its plugins taken from
    the packages the checkpoint recorded (a package installed later cannot take a name over)."""
    from seqcli.recipe.resolve import Recipe

    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: damaged checkpoint: the stored recipe is not a mapping")
    from seqcli import registry
    from seqcli.errors import PluginError

    for kind, record in records.items():
        try:
            registry.load(kind, record.name, record.package)
        except PluginError as exc:
            raise CheckpointError(f"{file}: built with {kind} '{record.name}' from package {record.package} "
                                  f"{record.version}, which is not usable here ({exc})") from None
    qualified = {k: v for k, v in data.items()}
    for kind, record in records.items():
        section = qualified.get("model") if kind == "cell" else qualified
        key = "cell" if kind == "cell" else kind
        if isinstance(section, dict) and isinstance(section.get(key), dict) and \
                section[key].get("name") in (record.name, record.qualified):
            section = dict(section)
            section[key] = {**section[key], "name": record.qualified}
            if kind == "cell":
                qualified["model"] = section
            else:
                qualified[kind] = section[key]
    from seqcli.schema import paths_unchecked

    try:
        with paths_unchecked():  # sampling needs no data; `evaluate` checks the files it reads
            recipe = Recipe.from_data(qualified, f"{file} (stored recipe)")
    except RecipeError as exc:
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        raise CheckpointError(f"{exc.problems[0]}{more}") from None
    except SeqcliError as exc:
        raise CheckpointError(f"{file}: stored recipe: {exc}") from None
    # keep the names as written, so comparisons with a recipe file see no change
    for kind in records:
        original = data["model"]["cell"]["name"] if kind == "cell" else data[kind]["name"]
        if original not in (records[kind].name, records[kind].qualified):
            continue
        setattr(recipe, kind, type(getattr(recipe, kind))(original, getattr(recipe, kind).options))
    return recipe


def load_weights(model: torch.nn.Module, ckpt: Checkpoint) -> None:
    """The checkpoint's weights into a model built from its recipe; a mismatch names the
    plugin versions recorded and installed, and every missing and unexpected key."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in ckpt.model]
    unexpected = [k for k in ckpt.model if k not in expected]
    shapes = [f"{k} {tuple(ckpt.model[k].shape)} (the model has {tuple(v.shape)})"
              for k, v in expected.items() if k in ckpt.model and ckpt.model[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected)}")
        if shapes:
            parts.append(f"shapes differ: {'; '.join(shapes)}")
        raise CheckpointError(f"{ckpt.path}: the weights do not fit the model its recipe describes"
                              f"{version_changes(ckpt)}: {'; '.join(parts)}")
    model.load_state_dict(ckpt.model)


def version_changes(ckpt: Checkpoint) -> str:
    from seqcli import registry

    """' (cell mypkg was 0.1.0 when saved, 0.2.0 now)', or '' when every version is the same."""
    changes = []
    for kind, record in ckpt.plugins.items():
        try:
            now = registry.info(kind, record.name, record.package).version
        except SeqcliError:
            continue
        if now != record.version:
            changes.append(f"{kind} '{record.name}' from {record.package} was {record.version} when saved, {now} now")
    if not changes:
        return ""
    return f" ({'; '.join(changes)}: the plugin's parameters changed between these versions)"


def checksum(obj: dict) -> str:
    """A SHA-256 of everything in a checkpoint but the checksum itself: every tensor's bytes,
    dtype and shape, and the plain data, in a fixed order."""
    import hashlib
    import json

    digest = hashlib.sha256()

    def feed(value) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
            t = value.detach().cpu().contiguous().reshape(-1)
            digest.update(t.view(torch.uint8).numpy().data if t.numel() else b"")
        elif isinstance(value, dict):
            digest.update(b"{")
            for key in sorted(value, key=str):
                if key != "checksum":
                    digest.update(json.dumps(str(key)).encode())
                    feed(value[key])
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            digest.update(b"[")
            for item in value:
                feed(item)
            digest.update(b"]")
        else:
            digest.update(json.dumps(value, default=repr).encode())

    feed(obj)
    return digest.hexdigest()


def seal(obj: dict) -> dict:
    """`obj` with its checksum, ready to save."""
    obj["checksum"] = checksum(obj)
    return obj


def save(ckpt: Checkpoint | dict, path: Path) -> None:
    """Write to a new temporary file beside `path`, flush it to disk, then rename it into
    place: a crash mid-save leaves the previous file intact."""
    from seqcli.files import write_atomic

    path = Path(path)
    state = seal(ckpt.to_state()) if isinstance(ckpt, Checkpoint) else ckpt
    try:
        write_atomic(path, writer=lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
        raise write_error(exc, path, state) from None


def write_error(exc: BaseException, path: Path, state: dict) -> SeqcliError:
    """A failed checkpoint write as one line: what happened, where, and how much it needed.
    The previous checkpoint is untouched (the write went to a temporary file)."""
    import errno

    from seqcli.errors import TrainingError

    need = sum(t.numel() * t.element_size() for t in _tensors(state))
    try:
        info = os.statvfs(path.parent)
        free = info.f_bavail * info.f_frsize
    except OSError:
        free = None
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < need):
        what = "no space left on the device"
    else:
        what = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
    room = f", {free / 2**20:,.1f} MB free" if free is not None else ""
    kept = f"the previous {path.name} is kept" if path.is_file() else f"there is no {path.name} yet"
    return TrainingError(f"cannot write checkpoint {path}: {what} (it needs about {need / 2**20:,.1f} MB in "
                         f"{path.parent}{room}); {kept}")


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def find(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file, or the `which` ('best' or 'last') checkpoint of a run directory."""
    import stat

    path = Path(path)
    if path.is_dir():
        from seqcli.files import clean_stale
        from seqcli.runfolder import RunFolder

        run = RunFolder(path)
        clean_stale(run.checkpoints)
        clean_stale(path)
        for name in (which, "last") if which == "best" else (which,):
            candidate = run.checkpoint(name)
            if candidate.is_file():
                return candidate
            if os.path.lexists(candidate):  # there, but not a file: never silently another checkpoint
                what = "a link to nothing" if candidate.is_symlink() and not candidate.exists() else \
                    "a folder" if candidate.is_dir() else "not a regular file"
                raise CheckpointError(f"{candidate}: is {what}, not a checkpoint file; remove it (or name another "
                                      f"checkpoint) to go on")
        raise CheckpointError(f"{path}: no {which} checkpoint in this directory (looked in {run.checkpoints})")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file or run directory") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file (a checkpoint is a file, or a run directory)")
    return path


def load(path: str | Path, which: str = "best", map_location="cpu") -> Checkpoint:
    """Read and check a checkpoint; a missing, truncated, foreign, damaged or code-carrying
    file is a one-line CheckpointError."""
    import warnings

    file = find(path, which)
    try:
        with open(file, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read ({exc.strerror})") from None
    if head[:1] == b"\x80" and head[:2] != b"\x80\x02":  # a pickle of protocol 3+, not torch.save's zip
        raise CheckpointError(f"{file}: a plain pickle file, not a seqcli checkpoint (seqcli never unpickles one: "
                              f"a checkpoint is the zip file torch.save writes)")
    try:
        with warnings.catch_warnings():  # torch's remarks on foreign files: the one line below says it
            warnings.simplefilter("ignore")
            obj = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle payloads, truncation and foreign files all land here
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            reason = "it holds pickled Python objects, which seqcli never loads (only tensors and plain data)"
        elif head[:1] == b"\x80":
            reason = "a plain pickle file, not a checkpoint seqcli wrote (seqcli never unpickles one)"
        else:
            reason = "the file is truncated or corrupt"
        raise CheckpointError(f"{file}: cannot read checkpoint: {reason}") from None
    return Checkpoint.from_state(obj, str(file))
