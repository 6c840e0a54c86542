"""Predictions as `seqcli sample` makes them, from a checkpoint alone.

A `Request` (the task's options, the inputs, an output file, pictures) is checked whole
before any model is built; then it is decoded at once, or, over an input file, streamed: in
batches of similar length, written in input order as each group is done, with progress on
stderr, and continued after a kill (`--continue`) through a `Ledger` kept beside the output.
An input the model cannot take stops the work naming its place (`file:line`), the first such
input in the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from seqcli import inference
from seqcli.api import INPUTS
from seqcli.errors import ConfigError, DataError, SeqcliError
from seqcli.files import check_output, read_regular, write_atomic
from seqcli.schema import File, Problem, check_text, flag

#: the longest input line read (bytes): a longer one is refused before it reaches a model
MAX_LINE = 1 << 20
PLAIN_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal


@dataclass
class Request:
    """What to predict: the task's own options (`given`), `--input` values, an input file
    ('-': stdin), and where the outputs go (`output`; None: returned for printing)."""

    given: dict = field(default_factory=dict)
    inputs: list[str] | None = None
    input_file: str | None = None
    output: str | None = None
    force: bool = False  # replace the output and pictures
    resume: bool = False  # --continue: append what the output lacks
    batch_size: int = 64
    json: bool = False  # --json: each output a line of JSON, its fields (`render`)


def run(ckpts: list, request: Request, device: str = "cpu", threads: int | None = None,
        base: str | None = None) -> str | None:
    """Check the request, build the model (several checkpoints: an ensemble of them),
    predict. The outputs as text when no output file is named, else None (written)."""
    ckpt = ckpts[0]
    plan = check(ckpt, request, base if base is not None else os.getcwd())
    from seqcli.train.threads import use_threads

    use_threads(threads)
    loaded = inference.from_checkpoints(ckpts, device)
    if request.input_file is not None and not plan.pictures:  # streamed: in batches, written as they are done
        predict_file(loaded, plan.values, list(request.inputs or []), request.input_file, request.output,
                     plan.written, request.resume, request.batch_size, request.json)
        return None
    values = dict(plan.values)
    if request.input_file is not None:
        values[INPUTS] = list(request.inputs or []) + [text for _, text in read_inputs(request.input_file)]
    results = inference.run_sample(loaded.task, loaded.model, loaded.fields, values)
    inference.write_figures(results, plan.pictures)
    if request.json:
        given = values.get(INPUTS) or [None] * len(results.lines)
        text = "\n".join(render(p, source) for p, source in zip(results.typed(), given))
    else:
        text = results.separator.join(results.lines)
    if plan.written is None:
        return text
    write_atomic(plan.written, text + "\n")
    return None


@dataclass
class Plan:
    values: dict  # the task's checked sample options
    pictures: dict  # option -> path
    written: Path | None  # the checked output path


def check(ckpt, request: Request, base: str) -> Plan:
    """Everything about a request that can be wrong, found before a model is built."""
    task = inference.task_of(ckpt)
    name = ckpt.recipe.task.name
    takes_inputs = INPUTS in inference.sample_parameters(type(task))
    given = dict(request.given)
    if request.inputs is not None or request.input_file is not None:
        if not takes_inputs:
            raise SeqcliError(f"--input/--input-file: the {name} task does not take this option (it takes no inputs)")
        given[INPUTS] = list(request.inputs or [])
        for text in given[INPUTS]:
            check_text(text, "--input")
    if request.input_file is not None:
        check_input_file(request.input_file)
    output, resume = request.output, request.resume
    if resume and (output is None or request.input_file is None):
        raise SeqcliError("--continue: needs --input-file and --output (it appends to the output)")
    if resume and request.input_file == "-":
        raise SeqcliError("--continue: needs a named --input-file (what stdin held cannot be checked against the "
                          "output)")
    if resume and request.force:
        raise SeqcliError("--continue and --force: choose one (append to the output, or replace it)")
    source = (request.input_file,) if request.input_file is not None else ()  # "-": what stdin reads
    written = None
    if output is not None:
        written = check_output(output, "--output", replace=True, inputs=source)  # never an input, folder or device
        if Path(output).exists() and not (request.force or resume):
            raise SeqcliError(f"--output: {output} already exists; pass --force to replace it, or --continue to "
                              f"append the outputs it lacks")
    try:  # every option and picture is checked before the model is built
        values = inference.sample_options(task, ckpt.recipe, given, base=base)
    except ConfigError as exc:
        raise SeqcliError(f"{'--input' if exc.key == INPUTS else flag(exc.key)}: {exc.message}") from None
    pictures = inference.check_figures(values, inference.sample_parameters(type(task)), request.force,
                                       inputs=source + ((output,) if output else ()))
    return Plan(values, pictures, written)


# -- input files --------------------------------------------------------------------------

def check_input_file(path: str) -> None:
    if path == "-":
        return
    try:
        File().apply(path)
    except Problem as exc:
        raise DataError(f"--input-file: {exc.message}") from None


def read_inputs(path: str, digest=None):
    """(where, text) for each non-blank line of a file ('-': stdin), read as it is used;
    each line is decoded on its own, so a problem names its line. `digest` (a hashlib
    object), if given, is fed every byte read."""
    name = "<stdin>" if path == "-" else path
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed below
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


# -- decoding in groups -------------------------------------------------------------------

def predict_stream(task, model, fields: dict, values: dict, inputs, batch_size: int = 64, chunk: int = 8):
    """Outputs for an iterable of (where, text) inputs: a list of (text, `Prediction`) per
    group of `batch_size * chunk` inputs, in input order, yielded as each group is done; memory holds one group.
    Inside a group inputs are decoded in batches of similar length (less padding), then put
    back in order. An input the task fails on is a DataError naming its `where` (for a file,
    `path:line`): the first such input."""
    group: list = []
    for item in inputs:
        group.append(item)
        if len(group) == batch_size * chunk:
            yield _predict_group(task, model, fields, values, group, batch_size)
            group = []
    if group:
        yield _predict_group(task, model, fields, values, group, batch_size)


def render(prediction, source: str | None) -> str:
    """`--json`: one line of JSON per output: its input, text, hypotheses [{output, score}]
    and details where the task has them (`seqcli.api.Prediction`)."""
    return json.dumps({**({"input": source} if source is not None else {}), **prediction.to_data()},
                      ensure_ascii=False)


def _predict_group(task, model, fields, values, group: list, batch_size: int) -> list:
    """(input, `Prediction`) for each of the group's inputs, in its order."""
    order = sorted(range(len(group)), key=lambda i: len(group[i][1]))
    out: list = [None] * len(group)
    for start in range(0, len(order), batch_size):
        part = order[start : start + batch_size]
        try:
            predictions = inference.run_sample(task, model, fields, {**values, INPUTS: [group[i][1] for i in part]}).typed()
        except Exception:  # noqa: BLE001 - any task error: find the first input it is about, in input order
            _first_failing(task, model, fields, values, group)
            raise
        for i, prediction in zip(part, predictions):
            out[i] = (group[i][1], prediction)
    return out


def _first_failing(task, model, fields, values, group: list) -> None:
    """Decode the group's inputs one at a time, in order; raise for the first that fails."""
    for where, text in group:
        try:
            inference.run_sample(task, model, fields, {**values, INPUTS: [text]})
        except SeqcliError as exc:
            raise DataError(f"{where}: {re.sub(r'^input 1:? ?', '', str(exc))}") from None
        except Exception as exc:  # noqa: BLE001 - a task's own failure, named by its input
            raise DataError(f"{where}: the task failed on this input: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")) from None


# -- streamed to a file --------------------------------------------------------------------

def predict_file(loaded, values: dict, given: list[str], input_file: str, output: str | None, written: Path | None,
                 resume: bool, batch_size: int, as_json: bool = False) -> None:
    """Outputs for `given` and every line of `input_file`, to `written` (the checked path of
    `output`) or stdout. With a named input and an output, a `Ledger` beside the output
    records what it was written from, so `resume` (--continue) can trust the lines it holds."""
    from rich.console import Console

    items = itertools.chain(((f"--input {i + 1}", text) for i, text in enumerate(given)), read_inputs(input_file))
    total, digest = None, hashlib.sha256()
    if input_file != "-":  # read once ahead: the count, the input's identity, and any bad line
        total = len(given) + sum(1 for _ in read_inputs(input_file, digest))
    done, ledger = 0, None
    if written is not None:
        if input_file != "-":
            plain = {k: v for k, v in values.items() if k != INPUTS}
            ledger = Ledger(written, {"input": os.path.abspath(input_file), "input_sha256": digest.hexdigest(),
                                      "given": list(given), "model": "+".join(c.digest for c in loaded.members or [loaded.checkpoint]),
                                      "options": json.loads(json.dumps(plain, sort_keys=True, default=str)),
                                      **({"format": "json"} if as_json else {})})
        if resume and written.exists():
            done = ledger.resume(output)
            if done > total:
                raise DataError(f"--continue: {output} has {done} outputs, more than the {total} inputs")
    out = None  # the output is opened when the first outputs are ready: a run that fails before leaves none

    def opened():
        if resume and done:
            return open(written, "ab")  # noqa: SIM115 - closed below
        if ledger is not None:
            ledger.save()  # before the output is emptied: a kill between them leaves a record of 0 outputs
        return open(written, "wb")  # noqa: SIM115 - closed below

    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    meter = Meter(stderr, total, done)
    try:
        groups = predict_stream(loaded.task, loaded.model, loaded.fields, values,
                                itertools.islice(items, done, None), batch_size)
        for pairs in groups:  # a group's outputs at once: whole outputs reach the file as they are done
            lines = [render(p, source) if as_json else p.text for source, p in pairs]
            text = "".join(line + "\n" for line in lines)
            if written is not None and out is None:
                out = opened()
            if written is None:
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
    if ledger is not None and (out is not None or done):
        ledger.finish()
    if output is not None:
        stderr.print(f"wrote {meter.count:,} outputs to {output}" + (f" after the {done:,} it had" if done else "")
                     + f" in {meter.elapsed():.1f}s ({meter.rate():,.0f} inputs/s)")


class Ledger:
    """What `--continue` needs to trust an output file, kept beside it (`.NAME.seqcli-continue`):
    the input (path and SHA-256), the `--input` values, the checkpoint (its checksum) and the
    options it is written with, and how many outputs seqcli has written (one per input, one
    line or several) and their bytes and SHA-256. Bytes past those (written just before a
    kill) are decoded again; anything else that differs is refused in one line."""

    def __init__(self, output: Path, identity: dict):
        self.output, self.identity = Path(output), identity
        self.path = self.output.with_name(f".{self.output.name}.seqcli-continue")
        self.lines, self.size, self.digest = 0, 0, hashlib.sha256()

    def save(self) -> None:
        record = {"format": 1, "identity": self.identity, "lines": self.lines, "bytes": self.size,
                  "sha256": self.digest.hexdigest()}
        write_atomic(self.path, json.dumps(record), sync=False)

    def add(self, data: bytes, outputs: int) -> None:
        self.lines, self.size = self.lines + outputs, self.size + len(data)
        self.digest.update(data)
        self.save()

    def finish(self) -> None:
        self.save()  # kept: a later --continue finds the output complete, and checks it

    def resume(self, shown: str) -> int:
        """Check the record against this command and the output against the record; cut what
        came after the recorded outputs; the number of outputs kept."""
        def refuse(why: str) -> SeqcliError:
            return SeqcliError(f"--continue: {shown} {why}; pass --force to write it anew")

        try:
            record = json.loads(read_regular(self.path, 1 << 22))
        except FileNotFoundError:
            raise refuse(f"has no record of what it was written from ({self.path.name} beside it): it was not "
                         f"written by seqcli sample --input-file") from None
        except (OSError, ValueError) as exc:
            raise refuse(f"has a damaged record {self.path} ({exc})") from None
        except RecursionError:
            raise refuse(f"has a damaged record {self.path} (nested too deeply)") from None
        if not (isinstance(record, dict) and isinstance(record.get("identity"), dict)
                and all(isinstance(record.get(k), int) and not isinstance(record[k], bool) and record[k] >= 0
                        for k in ("lines", "bytes")) and isinstance(record.get("sha256"), str)):
            raise refuse(f"has a damaged record {self.path}")
        was = record["identity"]
        try:  # a crafted record may nest deeper than comparing or showing it can go
            reasons = {"input": f"was written from {was.get('input')}, not {self.identity['input']}",
                       "input_sha256": f"was written from another version of {self.identity['input']} (it changed "
                                       f"since)",
                       "given": "was written with other --input values",
                       "model": "was written by another checkpoint (the run has trained since, or another run)",
                       "options": f"was written with other options ({describe(was.get('options'), self.identity['options'])})",
                       "format": f"was written as {'JSON lines' if was.get('format') else 'text'}; give --json "
                                 f"{'with' if was.get('format') else 'without'} --continue, as it was written"}
            changed = next((why for key, why in reasons.items() if was.get(key) != self.identity.get(key)), None)
        except RecursionError:
            changed = f"has a damaged record {self.path} (nested too deeply)"
        if changed:
            raise refuse(changed)
        digest, left = hashlib.sha256(), record["bytes"]
        with open(self.output, "rb") as f:
            while left and (chunk := f.read(min(left, 1 << 20))):
                digest.update(chunk)
                left -= len(chunk)
        if left:
            raise refuse(f"is shorter than the {record['lines']:,} outputs seqcli wrote into it (it changed since)")
        if digest.hexdigest() != record["sha256"]:
            raise refuse(f"changed since seqcli wrote it (its first {record['lines']:,} outputs differ from what "
                         f"was written)")
        with open(self.output, "r+b") as f:
            f.truncate(record["bytes"])  # an output cut off by a kill, or outputs the record does not vouch for
        self.lines, self.size, self.digest = record["lines"], record["bytes"], digest
        return self.lines


def describe(old, new) -> str:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return "unknown before"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys)


class Meter:
    """Inputs done and inputs/s: a live bar on a terminal, a plain line now and then elsewhere."""

    def __init__(self, console, total: int | None, done: int):
        self.console, self.total, self.done, self.count = console, total, done, 0
        self.started = self.last_line = time.perf_counter()
        self.bar = None
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
