"""`seqcli sample --input-file`: prediction over a file of any size, in batches, written in
input order as it is done, with progress on stderr; `--continue` picks up after a kill."""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from seqcli import inference
from seqcli.cli.sample import read_inputs
from seqcli.errors import DataError

PLAIN_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal


def predict_file(loaded, values: dict, given: list[str], input_file: str, output: str | None, resume: bool,
                 batch_size: int) -> None:
    items = itertools.chain(((f"--input {i + 1}", text) for i, text in enumerate(given)), read_inputs(input_file))
    total = len(given) + count_inputs(input_file) if input_file != "-" else None
    done = 0
    if output is not None:
        path = Path(output)
        if resume and path.exists():
            done = complete_lines(path)
            if total is not None and done > total:
                raise DataError(f"--continue: {output} has {done} lines, more than the {total} inputs")
        out = open(path, "a" if resume else "w", encoding="utf-8")
    else:
        out = sys.stdout
    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    meter = Meter(stderr, total, done)
    try:
        groups = inference.predict_stream(loaded.task, loaded.model, loaded.fields, values,
                                          itertools.islice(items, done, None), batch_size)
        for lines in groups:  # a group's lines at once: whole lines reach the file as they are done
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            meter.advance(len(lines))
    finally:
        meter.close()
        if out is not sys.stdout:
            out.close()
    if output is not None:
        stderr.print(f"wrote {meter.count:,} outputs to {output}" + (f" after the {done:,} it had" if done else "")
                     + f" in {meter.elapsed():.1f}s ({meter.rate():,.0f} inputs/s)")


def count_inputs(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def complete_lines(path: Path) -> int:
    """The output lines a killed prediction wrote in full; a cut-off last line is removed."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return data.count(b"\n", 0, end)


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
