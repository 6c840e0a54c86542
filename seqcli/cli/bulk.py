"""`seqcli sample --input-file`: prediction over a file of any size, in batches, written in
input order as it is done, with progress on stderr; `--continue` picks up after a kill."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from seqcli import inference
from seqcli.cli.inputs import read_inputs
from seqcli.errors import DataError, SeqcliError
from seqcli.files import read_regular, write_atomic

PLAIN_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal


def predict_file(loaded, values: dict, given: list[str], input_file: str, output: str | None, written: Path | None,
                 resume: bool, batch_size: int) -> None:
    """Outputs for `given` and every line of `input_file`, to `written` (the checked path of
    `output`) or stdout. With a named input and an output, a `Ledger` beside the output
    records what it was written from, so `resume` (--continue) can trust the lines it holds."""
    items = itertools.chain(((f"--input {i + 1}", text) for i, text in enumerate(given)), read_inputs(input_file))
    total, digest = None, hashlib.sha256()
    if input_file != "-":  # read once ahead: the count, the input's identity, and any bad line
        total = len(given) + sum(1 for _ in read_inputs(input_file, digest))
    done, ledger = 0, None
    if written is not None:
        if input_file != "-":
            plain = {k: v for k, v in values.items() if k != "inputs"}
            ledger = Ledger(written, {"input": os.path.abspath(input_file), "input_sha256": digest.hexdigest(),
                                      "given": list(given), "model": loaded.checkpoint.digest,
                                      "options": json.loads(json.dumps(plain, sort_keys=True, default=str))})
        if resume and written.exists():
            done = ledger.resume(output)
            if done > total:
                raise DataError(f"--continue: {output} has {done} lines, more than the {total} inputs")
            out = open(written, "ab")
        else:
            if ledger is not None:
                ledger.save()  # before the output is emptied: a kill between them leaves a record of 0 lines
            out = open(written, "wb")
    else:
        out = None
    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    meter = Meter(stderr, total, done)
    try:
        groups = inference.predict_stream(loaded.task, loaded.model, loaded.fields, values,
                                          itertools.islice(items, done, None), batch_size)
        for lines in groups:  # a group's lines at once: whole lines reach the file as they are done
            text = "".join(line + "\n" for line in lines)
            if out is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                data = text.encode("utf-8")
                out.write(data)
                out.flush()
                if ledger is not None:
                    ledger.add(data, len(lines))
            meter.advance(len(lines))
    finally:
        meter.close()
        if out is not None:
            out.close()
    if ledger is not None:
        ledger.finish()
    if output is not None:
        stderr.print(f"wrote {meter.count:,} outputs to {output}" + (f" after the {done:,} it had" if done else "")
                     + f" in {meter.elapsed():.1f}s ({meter.rate():,.0f} inputs/s)")


class Ledger:
    """What `--continue` needs to trust an output file, kept beside it (`.NAME.seqcli-continue`):
    the input (path and SHA-256), the
    `--input` values, the checkpoint (its checksum) and the options it is written with, and how
    many lines seqcli has written (their bytes and SHA-256). Lines past those (written just
    before a kill) are decoded again; anything else that differs is refused in one line."""

    def __init__(self, output: Path, identity: dict):
        self.output, self.identity = Path(output), identity
        self.path = self.output.with_name(f".{self.output.name}.seqcli-continue")
        self.lines, self.size, self.digest = 0, 0, hashlib.sha256()

    def save(self) -> None:
        record = {"format": 1, "identity": self.identity, "lines": self.lines, "bytes": self.size,
                  "sha256": self.digest.hexdigest()}
        write_atomic(self.path, json.dumps(record), sync=False)

    def add(self, data: bytes, lines: int) -> None:
        self.lines, self.size = self.lines + lines, self.size + len(data)
        self.digest.update(data)
        self.save()

    def finish(self) -> None:
        self.save()  # kept: a later --continue finds the output complete, and checks it

    def resume(self, shown: str) -> int:
        """Check the record against this command and the output against the record; cut what
        came after the recorded lines; the number of lines kept."""
        def refuse(why: str) -> SeqcliError:
            return SeqcliError(f"--continue: {shown} {why}; pass --force to write it anew")

        try:
            record = json.loads(read_regular(self.path, 1 << 22))
        except FileNotFoundError:
            raise refuse(f"has no record of what it was written from ({self.path.name} beside it): it was not "
                         f"written by seqcli sample --input-file") from None
        except (OSError, ValueError) as exc:
            raise refuse(f"has a damaged record {self.path} ({exc})") from None
        if not (isinstance(record, dict) and isinstance(record.get("identity"), dict)
                and all(isinstance(record.get(k), int) and not isinstance(record[k], bool) and record[k] >= 0
                        for k in ("lines", "bytes")) and isinstance(record.get("sha256"), str)):
            raise refuse(f"has a damaged record {self.path}")
        was = record["identity"]
        reasons = {"input": f"was written from {was.get('input')}, not {self.identity['input']}",
                   "input_sha256": f"was written from another version of {self.identity['input']} (it changed since)",
                   "given": "was written with other --input values",
                   "model": "was written by another checkpoint (the run has trained since, or another run)",
                   "options": f"was written with other options ({describe(was.get('options'), self.identity['options'])})"}
        for key, why in reasons.items():
            if was.get(key) != self.identity[key]:
                raise refuse(why)
        digest, left = hashlib.sha256(), record["bytes"]
        with open(self.output, "rb") as f:
            while left and (chunk := f.read(min(left, 1 << 20))):
                digest.update(chunk)
                left -= len(chunk)
        if left:
            raise refuse(f"is shorter than the {record['lines']:,} lines seqcli wrote into it (it changed since)")
        if digest.hexdigest() != record["sha256"]:
            raise refuse(f"changed since seqcli wrote it (its first {record['lines']:,} lines differ from what was "
                         f"written)")
        with open(self.output, "r+b") as f:
            f.truncate(record["bytes"])  # a line cut off by a kill, or lines the record does not vouch for
        self.lines, self.size, self.digest = record["lines"], record["bytes"], digest
        return self.lines


def describe(old, new) -> str:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return "unknown before"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys)


class Meter:
    """Inputs done and inputs/s: a live bar on a terminal, a plain line now and then elsewhere."""

    def __init__(self, console: Console, total: int | None, done: int):
        self.console, self.total, self.done, self.count = console, total, done, 0
        self.started = self.last_line = time.perf_counter()
        self.bar = None
        if console.is_terminal:
            self.bar = Progress(TextColumn("[bold blue]sample"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]:,.0f} inputs/s"), TimeRemainingColumn(),
                                console=console)
            self.task = self.bar.add_task("sample", total=total, completed=done, rate=0.0)
            self.bar.start()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def rate(self) -> float:
        return self.count / max(self.elapsed(), 1e-9)

    def advance(self, n: int) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done + self.count, rate=self.rate())
        elif time.perf_counter() - self.last_line >= PLAIN_EVERY_S:
            self.last_line = time.perf_counter()
            of = f"/{self.total:,}" if self.total is not None else ""
            self.console.print(f"sample: {self.done + self.count:,}{of} inputs, {self.rate():,.0f} inputs/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
