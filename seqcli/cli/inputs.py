"""Inputs read from a file (or stdin) for `seqcli sample --input-file`, a line at a time."""

from __future__ import annotations


def check_input_file(path: str) -> None:
    from seqcli.errors import DataError
    from seqcli.schema import File, Problem

    if path == "-":
        return
    try:
        File().apply(path)
    except Problem as exc:
        raise DataError(f"--input-file: {exc.message}") from None


#: the longest input line read (bytes): a longer one is refused before it reaches a model
MAX_LINE = 1 << 20


def read_inputs(path: str, digest=None):
    """(where, text) for each non-blank line of a file ('-': stdin), read as it is used;
    each line is decoded on its own, so a problem names its line. `digest` (a hashlib
    object), if given, is fed every byte read."""
    import contextlib
    import sys

    from seqcli.errors import DataError

    name = "<stdin>" if path == "-" else path
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as exc:
        raise DataError(f"--input-file: {name}: {exc.strerror or exc}") from None
    with stream if path != "-" else contextlib.nullcontext(stream):  # stdin is used, never closed
        number = 0
        while raw := stream.readline(MAX_LINE + 1):
            number += 1
            if len(raw) > MAX_LINE:
                raise DataError(f"{name}:{number}: a line of more than {MAX_LINE:,} bytes; one input is at most "
                                f"{MAX_LINE:,}")
            if digest is not None:
                digest.update(raw)
            if b"\0" in raw:
                raise DataError(f"{name}:{number}: a NUL byte: this looks like a binary file, not text")
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{name}:{number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            if text.strip():
                yield f"{name}:{number}", text
