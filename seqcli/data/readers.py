"""Rows from TSV, CSV and JSONL files; a line that does not parse is named by file and line."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterator

from seqcli.errors import DataError

FORMATS = ("auto", "tsv", "csv", "jsonl")


def detect(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "tsv"


def read_text(path: str) -> str:
    """A UTF-8 text file; a binary or mis-encoded file gets a DataError naming it."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    if b"\x00" in raw[:65536]:
        raise DataError(f"{path}: looks like a binary file (it contains NUL bytes), not text")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark is an encoding, not text
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def text_lines(path: str) -> list[str]:
    """A file's lines; a binary or non-UTF-8 file is a DataError naming it."""
    from seqcli.vocab import lines

    return lines(read_text(path))


def rows(path: str, fmt: str, fields: dict[str, str | int]) -> Iterator[tuple[int, dict]]:
    """(line number, {name: value}) for each record. `fields` maps our names to a JSON key,
    a CSV/TSV header name (the first line is then the header), or a 0-based column index."""
    fmt = detect(path, fmt)
    lines = text_lines(path)
    if fmt == "jsonl":
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
            except ValueError:  # an integer past Python's digit limit
                raise DataError(f"{path}:{n}: a number of more than 4,300 digits") from None
            except RecursionError:
                raise DataError(f"{path}:{n}: JSON nested too deeply") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{n}: expected a JSON object per line, got {type(record).__name__}")
            out = {}
            for name, key in fields.items():
                if str(key) not in record:
                    raise DataError(f"{path}:{n}: no key '{key}' (keys: {', '.join(record)}); set dataset.{name}")
                out[name] = record[str(key)]
            yield n, out
        return
    reader = csv.reader(lines, delimiter="\t" if fmt == "tsv" else ",")
    columns: dict[str, int] = {}
    header_names = [k for k in fields.values() if isinstance(k, str)]
    if header_names:
        header = next((record for _, record in _guarded(reader, path, fmt)), None) or []
        for name, key in fields.items():
            if isinstance(key, int):
                columns[name] = key
            elif key in header:
                columns[name] = header.index(key)
            else:
                raise DataError(f"{path}:1: no column '{key}' in the header ({', '.join(header)}); set dataset.{name} "
                                f"to a column name or a 0-based index")
    else:
        columns = dict(fields)
    width = len(header) if header_names else None
    for n, record in _guarded(reader, path, fmt):
        if not any(cell.strip() for cell in record):
            continue
        if width is not None and len(record) != width:
            raise DataError(f"{path}:{n}: {len(record)} {fmt.upper()} columns, the header has {width} "
                            f"(a value holding the delimiter must be quoted)")
        try:
            yield n, {name: record[i] for name, i in columns.items()}
        except IndexError:
            raise DataError(f"{path}:{n}: expected at least {max(columns.values()) + 1} {fmt.upper()} columns, "
                            f"found {len(record)}") from None


def _guarded(reader, path: str, fmt: str):
    """(line, record) from a csv reader over a file's lines; a record it cannot read (a field
    over the csv module's size limit, say) is a DataError naming the line."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: cannot read this {fmt.upper()} line ({exc})") from None
        yield reader.line_num, record


def text_field(value, where: str, name: str) -> str:
    """A text value read from a file: a string (a number is taken as its digits); JSON's
    null, true/false, lists and objects are refused, not trained on as 'None'."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    kind = "null" if value is None else "true/false" if isinstance(value, bool) else type(value).__name__
    raise DataError(f"{where}: the {name} is {kind}, not text")


def numbers(value, where: str) -> list[list[float]]:
    """A numeric sequence: [[...], ...] (T x D), [...] (T x 1), or text 'a b; c d' -> T x D."""
    if isinstance(value, str):
        try:
            value = [[float(x) for x in step.replace(",", " ").split()] for step in value.split(";") if step.strip()]
        except ValueError as exc:
            raise DataError(f"{where}: expected a non-empty sequence of numbers ({exc})") from None
    elif isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        value = [[float(v)] for v in value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(step, list) and step and all(isinstance(x, int | float) for x in step) for step in value)):
        raise DataError(f"{where}: expected a non-empty sequence of numbers or of equal-length number lists")
    if len({len(step) for step in value}) != 1:
        raise DataError(f"{where}: every step of a numeric sequence needs the same number of values")
    out = [[float(x) for x in step] for step in value]
    for t, step in enumerate(out):
        for x in step:
            if not math.isfinite(x):
                raise DataError(f"{where}: step {t + 1} holds {x}; numbers must be finite")
    return out
