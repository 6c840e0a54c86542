"""The files seqcli writes for itself, and how it opens what a user names.

Every write goes through here, so one set of rules holds everywhere:

- seqcli's own files (locks, temporary files) are opened without following a symlink, and
  a lock that is not a regular file is refused: a link planted where seqcli keeps its
  bookkeeping is never written through, and a dangling one never creates its target.
- A file is written whole or not at all: into a temporary file created afresh beside it
  (`O_EXCL`, never an existing file), flushed to disk, then renamed into place. A path that
  holds a folder, a device, a FIFO or a socket is refused, never renamed over.
- A file seqcli reads for itself (a cache entry's metadata) is opened without blocking and
  read only when it is a regular file of bounded size: a FIFO there is refused, not waited on.
- An output a user names (`seqcli sample -o`) is checked before any work: not an input
  (the same file, also through a link), not a folder, device or FIFO, in a folder that exists.

Nothing here imports torch.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from seqcli.errors import SeqcliError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def kind_of(mode: int) -> str:
    """'a folder', 'a FIFO', ... for a file mode that is not a regular file's."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_own(path: str | Path, what: str = "file") -> int:
    """Open (creating it if needed) one of seqcli's own bookkeeping files for reading and
    writing: never through a symlink, and only when it is a regular file. Returns the fd."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise SeqcliError(f"{path}: the {what} is a symbolic link; seqcli never writes through a link it did not "
                              f"make (remove it)") from None
        raise SeqcliError(f"{path}: cannot open the {what} ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SeqcliError(f"{path}: the {what} is {kind_of(mode)}, not a regular file; seqcli writes only its own "
                          f"files (remove it)")
    os.set_blocking(fd, True)
    return fd


def check_replaceable(path: str | Path, what: str = "") -> None:
    """A file about to be replaced: absent, a regular file, or a symlink (the link itself is
    replaced; what it points to is never written). A folder, device, FIFO or socket is refused."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SeqcliError(f"{what}{path}: cannot check it ({exc.strerror})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise SeqcliError(f"{what}{path}: is {kind_of(mode)}; seqcli writes only regular files and never replaces "
                          f"a folder, device or FIFO")


def temporary(path: Path) -> Path:
    """The temporary name a write of `path` uses (`.NAME.tmp-PID`): `clean_stale` knows it."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def is_stale(path: Path) -> bool:
    """A temporary file (`.NAME.tmp-PID`) whose process is gone: a kill's leftover."""
    name = Path(path).name
    if not (name.startswith(".") and ".tmp-" in name):
        return False
    pid = name.rpartition(".tmp-")[2]
    return pid.isdigit() and not _alive(int(pid))


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporary files and folders that killed processes left in `folder` (links
    themselves, never what they point to); a process that is still running keeps its own."""
    import shutil

    removed = []
    for tmp in Path(folder).glob(".*.tmp-*"):
        if not is_stale(tmp):
            continue
        try:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def create_new(path: Path):
    """A file object on a file created just now at `path` (`O_EXCL`: never an existing file or
    link). A leftover of a dead process with our PID is removed first (the link, not its target)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except FileExistsError:
        os.unlink(path)  # ours by name: a previous process with this PID died mid-write
        fd = os.open(path, flags, 0o666)
    return os.fdopen(fd, "wb")


def write_atomic(path: str | Path, data: bytes | str | None = None, writer=None, sync: bool = True) -> None:
    """Write a whole file or nothing: `data` (or whatever `writer(file)` writes) into a new
    temporary file, flushed to disk, then renamed over `path`. A crash leaves the previous file."""
    path = Path(path)
    check_replaceable(path)
    tmp = temporary(path)
    try:
        with create_new(tmp) as f:
            if writer is not None:
                writer(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else (a FIFO, a device, a
    folder, a larger file) raises OSError or ValueError, without blocking."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is {kind_of(info.st_mode)}")
        if info.st_size > limit:
            raise ValueError(f"{path} holds {info.st_size:,} bytes, more than {limit:,}")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{path} holds more than {limit:,} bytes")
    return data


def sha256_of(path: str | Path) -> str:
    """A SHA-256 of a file's bytes (about 1.8 GB/s here)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path` (links followed; "-": the standard input), or
    None when there is none."""
    try:
        info = os.fstat(0) if str(path) == "-" else os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def check_output(path: str | Path, flag: str, *, replace: bool, inputs: tuple = ()) -> Path:
    """A file a command will write, checked before any work: `flag PATH: why` on a problem.

    A link is resolved (the file written is the one it names, and that path is returned;
    otherwise `path` itself is); the file must not be one
    of `inputs` (compared by device and inode, so also through links and hard links); when it
    exists it must be a regular file, and it is replaced only when `replace`; its folder must
    exist and be writable."""
    real = Path(os.path.realpath(path))
    try:
        info = os.stat(real)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise SeqcliError(f"{flag} {path}: cannot check it ({exc.strerror})") from None
    if info is not None:
        for source in inputs:
            if source is not None and identity(source) == (info.st_dev, info.st_ino):
                what = "the standard input" if str(source) == "-" else f"the input {source}"
                raise SeqcliError(f"{flag} {path}: is {what}; writing it would destroy the input "
                                  f"(choose another output file)")
        if not stat.S_ISREG(info.st_mode):
            raise SeqcliError(f"{flag} {path}: is {kind_of(info.st_mode)}, not a regular file; seqcli writes outputs "
                              f"only to regular files")
        if not replace:
            raise SeqcliError(f"{flag} {path} already exists; pass --force to replace it")
    folder = real.parent
    if not folder.is_dir():
        raise SeqcliError(f"{flag} {path}: folder {Path(path).parent} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SeqcliError(f"{flag} {path}: folder {Path(path).parent} is not writable")
    return real if os.path.islink(path) else Path(path)


class Lock:
    """An exclusive lock on one of seqcli's own files (flock: released by the operating
    system however the holder ends), opened as `open_own` opens it. The one lock of run
    folders, sweeps and their trials."""

    def __init__(self, path: str | Path, what: str = "lock"):
        self.path, self.what = Path(path), what
        self.fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock (waiting for it, or not); False when another process holds it. The
        file stays open either way until `release`."""
        import fcntl

        if self.fd is None:
            self.fd = open_own(self.path, self.what)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            return False
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read(self) -> str:
        return os.pread(self.fd, 64, 0).decode(errors="replace")

    def write(self, text: str) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, text.encode(), 0)

    def __enter__(self) -> Lock:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @staticmethod
    def held(path: str | Path) -> bool:
        """Whether a live process holds the lock on `path`."""
        if not Path(path).exists():
            return False
        probe = Lock(path)
        try:
            return not probe.acquire(wait=False)
        finally:
            probe.release()
