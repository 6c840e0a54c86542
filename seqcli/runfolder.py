"""The run folder: what it holds, and the one module that names, locks, reads and writes it.

    RUN_DIR/
      recipe.yaml              the resolved recipe
      metrics.jsonl            one JSON record a line (`MetricsLog`)
      checkpoints/last.pt      what a run resumes from, written last
      checkpoints/best.pt      the best validation so far
      checkpoints/step-N.pt    the last `train.keep_checkpoints`
      samples.txt              the sample drawn at the end of training
      mlflow.json              the MLflow run's id (`train.mlflow`)
      tensorboard/             `train.tensorboard`
      .lock                    the one writer's lock (`RunFolder.lock`)

Every file is written whole (`seqcli.files.write_atomic`), except the metric log, which is
appended a record at a time and cut back to a checkpoint's step on resume.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from seqcli.errors import CheckpointError, SeqcliError
from seqcli.files import Lock, clean_stale, is_stale, write_atomic

RECIPE = "recipe.yaml"
METRICS = "metrics.jsonl"
SAMPLES = "samples.txt"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
MLFLOW = "mlflow.json"
LOCK = ".lock"
FOLDS = "folds.json"  # a cross-validation's folder: fold-1, fold-2, ... (run folders) and this summary
#: what a run writes into its folder, besides temporary files: all that a failed start removes
RUN_FILES = (RECIPE, METRICS, SAMPLES, CHECKPOINTS, TENSORBOARD, MLFLOW, LOCK)


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- names ------------------------------------------------------------------------------

    @property
    def recipe(self) -> Path:
        return self.path / RECIPE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def mlflow(self) -> Path:
        return self.path / MLFLOW

    def checkpoint(self, which: str | int) -> Path:
        """'best', 'last', or a step number (a numbered checkpoint)."""
        return self.checkpoints / (f"step-{which:08d}.pt" if isinstance(which, int) else f"{which}.pt")

    def numbered(self) -> list[Path]:
        """The numbered checkpoints, oldest first."""
        return sorted(self.checkpoints.glob("step-*.pt"))

    def keep_numbered(self, keep: int) -> None:
        for old in self.numbered()[:-keep]:
            old.unlink(missing_ok=True)

    # -- writing ----------------------------------------------------------------------------

    def write_recipe(self, text: str) -> None:
        write_atomic(self.recipe, text)

    def write_samples(self, text: str) -> None:
        write_atomic(self.samples, text)

    def log(self) -> MetricsLog:
        return MetricsLog(self.metrics)

    def lock(self) -> RunLock:
        return RunLock(self.path)

    # -- what is in it ----------------------------------------------------------------------

    def has_contents(self) -> bool:
        """Anything but its lock and what killed processes left (temporary files)."""
        path = self.path
        return path.exists() and (not path.is_dir() or any(p.name != LOCK and not is_stale(p) for p in path.iterdir()))

    def unstarted(self) -> bool:
        """A run that stopped before its first checkpoint (killed, failed, or out of disk
        inside its first checkpoint's writes): its lock and recipe, no last.pt, and nothing
        but what a run writes."""
        def only(folder: Path, allowed) -> bool:
            return all(p.name in allowed or is_stale(p) or (p.name.startswith("step-") and p.suffix == ".pt")
                       for p in folder.iterdir())

        lock = self.path / LOCK
        return (lock.is_file() and not lock.is_symlink() and self.recipe.is_file()
                and not self.checkpoint("last").exists() and only(self.path, RUN_FILES)
                and (not self.checkpoints.is_dir() or only(self.checkpoints, ("best.pt",))))

    def make(self) -> None:
        """Create the folder chosen for a new run (still empty, or made just now)."""
        if self.has_contents():
            raise SeqcliError(f"run directory {self.path} already exists and is not empty; choose another --run-dir "
                              f"(another process wrote it while this run started)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SeqcliError(f"cannot create run directory {self.path}: {exc.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise SeqcliError(f"run directory {self.path} is not writable")

    def unmake(self, created: bool) -> None:
        """Remove what a run that failed before its first checkpoint wrote (the folder was
        empty when it started), and the folder if this command made it. Only the names a run
        writes are touched."""
        import shutil

        folder = self.checkpoints
        if folder.is_dir() and not folder.is_symlink():
            for path in [self.checkpoint("best"), *self.numbered()]:
                path.unlink(missing_ok=True)
            clean_stale(folder)
        if self.tensorboard.is_dir() and not self.tensorboard.is_symlink():
            shutil.rmtree(self.tensorboard, ignore_errors=True)
        for path in (self.recipe, self.metrics, self.samples, self.mlflow, self.path / LOCK):
            path.unlink(missing_ok=True)
        clean_stale(self.path)
        for empty in (folder, self.path) if created else (folder,):
            try:
                empty.rmdir()  # only when empty
            except OSError:
                pass

    def validation_records(self) -> list[dict]:
        return [r for r in self.log().read() if r.get("split") == "valid"]


class RunLock:
    """One writer per run directory: an exclusive lock on RUN_DIR/.lock, held by `run` and
    `resume` while they train, released by the operating system when the process ends in
    any way (a SIGKILLed run can be resumed at once). The file holds the holder's PID. A lock
    that is a symlink, a folder, a FIFO or a device is refused, never written through. The
    holder removes the temporary files that killed processes left in the folder."""

    def __init__(self, run_dir: Path):
        self.folder = Path(run_dir)
        self.lock = Lock(self.folder / LOCK, "run directory's lock")

    def __enter__(self) -> RunLock:
        if not self.lock.acquire(wait=False):
            holder = self.lock.read().strip() or "?"
            self.lock.release()
            raise SeqcliError(f"run directory {self.folder} is in use by process {holder} (a seqcli run or "
                              f"resume); one process writes a run directory at a time") from None
        self.lock.write(f"{os.getpid()}\n")
        clean_stale(self.folder)
        clean_stale(self.folder / CHECKPOINTS)
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()


class MetricsLog:
    """metrics.jsonl: one JSON record a line, appended as they come (flushed each time, so a
    kill loses at most the line being written); read back skipping a cut-off last line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.file = None

    def open(self) -> MetricsLog:
        self.file = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short when the process was killed
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def truncate(self, step: int) -> None:
        """Drop the records after `step` (written after the checkpoint a run resumes from)."""
        if not self.path.is_file():
            return
        kept = [json.dumps(r) for r in self.read() if r.get("step", 0) <= step]
        write_atomic(self.path, "".join(line + "\n" for line in kept))


def choose(run_dir: str | None, stem: str, recipe_text: str, root: str = "runs") -> Path:
    """The run directory a new run will write, checked but not yet created: an existing
    non-empty one is refused, never reused, unless it holds a run that stopped before its
    first checkpoint with this very recipe (`recipe_text`), which is then trained again."""
    if run_dir is None:
        base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path
    folder = RunFolder(run_dir)
    if folder.has_contents():
        if folder.unstarted():
            if folder.recipe.read_text(encoding="utf-8", errors="replace") == recipe_text:
                return folder.path
            raise SeqcliError(f"run directory {folder.path} holds a run that stopped before its first checkpoint, "
                              f"with another recipe; train it again with: seqcli resume {folder.path} (its own "
                              f"recipe), or choose another --run-dir (nothing in it was changed)")
        raise SeqcliError(f"run directory {folder.path} already exists and is not empty; choose another --run-dir, "
                          f"or continue it with --resume (nothing in it was changed)")
    parent = next((p for p in folder.path.absolute().parents if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):
        raise SeqcliError(f"cannot create run directory {folder.path}: {parent} is not writable")
    return folder.path


def fold(base: str | Path, number: int) -> Path:
    """The run folder of fold `number` of the cross-validation in `base`."""
    return Path(base) / f"fold-{number}"


def write_folds(base: str | Path, summary: dict) -> Path:
    path = Path(base) / FOLDS
    write_atomic(path, json.dumps(summary, indent=1) + "\n")
    return path


def latest(root: str = "runs") -> Path:
    """The run directory under `root` whose last checkpoint is the newest."""
    runs = sorted(Path(root).glob(f"*/{CHECKPOINTS}/last.pt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise CheckpointError(f"no runs with a checkpoint under {root}/; name the run directory to resume")
    return runs[-1].parent.parent


def of_checkpoint(path: str | Path) -> RunFolder | None:
    """The run folder a checkpoint file or run directory belongs to, if it is one."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == CHECKPOINTS else None
    return RunFolder(folder) if folder is not None and (folder / RECIPE).is_file() else None
