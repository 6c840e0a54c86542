"""Dynamic batching, off the event loop.

Requests that arrive within `wait` seconds of each other and share their options (all but
their inputs, or a language model's prime) are decoded together, up to `max_batch` inputs,
by one worker thread; the event loop only queues them and awaits their answers, so /health
answers while a long generation runs. The queue is bounded: a request that finds it full is
refused (the server answers 503 with Retry-After) rather than waiting without bound.

A request whose answer depends on what it is decoded with is decoded alone: seeded sampling
(the seed's draws would be shared with its batch) and requests for pictures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field


class Full(Exception):
    """The queue holds `max_queue` requests already."""


class Cancelled(Exception):
    """A streaming client went away; its generation stopped."""


@dataclass
class Job:
    values: dict  # the checked sample options of one request
    key: str  # requests with the same key are decoded together
    size: int  # its inputs (1 for a language model's prime)
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    stream: asyncio.Queue | None = None  # a streamed generation's pieces
    length: float = 0.0  # how long its inputs are: requests of similar length are batched together
    arrived: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)


ALONE = "alone-"


def group_key(values: dict, varying: str, streaming: bool = False, together: bool = True) -> str:
    """What must be equal for two requests to be decoded together (`together`: whether the
    model can decode such requests together at all); streams group only with streams."""
    rest = {k: v for k, v in values.items() if k != varying}
    sampling = values.get("temperature", 0) and values.get("seed") is not None
    if not together or sampling or any(k.endswith("_plot") and v is not None for k, v in values.items()):
        return f"{ALONE}{next(_unique)}"
    return ("stream " if streaming else "") + json.dumps(rest, sort_keys=True, default=str)


_unique = itertools.count()


class Batcher:
    """A bounded queue of jobs and `workers` decoder threads taking groups from it.

    A decoder never dies of what it decodes: an error in a group's decoding is that group's
    answer, and anything that still escapes a decoder's loop is counted, and the decoder is
    started again (`restarts`). Only a decoder that fails `GIVE_UP` times within
    `GIVE_UP_SECONDS` is left down; when none is left, `/health` answers 503 with the reason."""

    GIVE_UP, GIVE_UP_SECONDS = 5, 60.0

    def __init__(self, decode, stream, metrics, max_batch: int, wait: float, max_queue: int, workers: int = 1):
        self.decode, self.stream_decode, self.metrics = decode, stream, metrics
        self.max_batch, self.wait, self.max_queue = max_batch, wait, max_queue
        self.pending: deque[Job] = deque()
        self.condition = threading.Condition()
        self.running = True
        self.restarts, self.last_error = 0, None
        self.idle = 0  # decoders waiting for a group
        self.failures: list[deque[float]] = [deque(maxlen=self.GIVE_UP) for _ in range(workers)]
        self.threads = [self._start(i) for i in range(workers)]

    def _start(self, i: int) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(i,), name=f"seqcli-decoder-{i}", daemon=True)
        thread.start()
        return thread

    @property
    def alive(self) -> int:
        """Decoder threads running now."""
        return sum(t.is_alive() for t in self.threads)

    def health(self) -> str | None:
        """Why nothing can be decoded now, or None."""
        if self.alive:
            return None
        if not self.running:
            return "the server is stopping"
        return f"no decoder is running (each failed {self.GIVE_UP} times in {self.GIVE_UP_SECONDS:.0f} s; " \
               f"the last: {self.last_error})"

    # -- the event loop's side ---------------------------------------------------------------

    def submit(self, values: dict, key: str, size: int, streaming: bool = False, length: float = 0.0) -> Job:
        loop = asyncio.get_running_loop()
        job = Job(values, key, size, loop, loop.create_future(), asyncio.Queue() if streaming else None, length)
        job.future.add_done_callback(_retrieved)  # a client gone before its answer leaves no warning
        with self.condition:
            if len(self.pending) >= self.max_queue or not self.alive:
                raise Full
            self.pending.append(job)
            self.metrics.queue = len(self.pending)
            self.condition.notify()
        return job

    def stop(self) -> None:
        """Finish what is queued, then stop the decoders."""
        with self.condition:
            self.running = False
            self.condition.notify_all()
        for thread in list(self.threads):
            thread.join()

    # -- the decoders' side ----------------------------------------------------------------------

    def _take(self) -> list[Job] | None:
        """The next group, taken whole under the lock: the oldest request and others queued
        with its key, once it has waited `wait` seconds or a batch is full. Requests waiting
        together are shared among the decoders that are idle, each taking requests of
        similar length (less padding); whichever takes the oldest, every request is taken
        by one of them. While a decoder waits, another may take its oldest request; it then
        starts again from the oldest one left."""
        with self.condition:
            self.idle += 1
            try:
                while True:
                    while not self.pending:
                        if not self.running:
                            return None
                        self.condition.wait()
                    first = self.pending[0]
                    while self.running and not first.key.startswith(ALONE):
                        queued = sum(j.size for j in self.pending if j.key == first.key)
                        left = first.arrived + self.wait - time.monotonic()
                        if queued >= self.max_batch or left <= 0:
                            break
                        self.condition.wait(left)
                        if not self.pending or self.pending[0] is not first:
                            break  # taken by another decoder
                    if not self.pending or self.pending[0] is not first:
                        continue
                    group = self._share(first)
                    for job in group:
                        self.pending.remove(job)
                    self.metrics.queue = len(self.pending)
                    self.condition.notify_all()  # the other idle decoders take the rest
                    return group
            finally:
                self.idle -= 1

    def _share(self, first: Job) -> list[Job]:
        """`first` and the requests of its key that make this decoder's share: those queued
        with it, sorted by length and cut into runs of about total / idle decoders inputs
        (at most `max_batch`); the run that holds `first`."""
        same = sorted((j for j in self.pending if j.key == first.key), key=lambda j: j.length)
        share = min(self.max_batch, -(-sum(j.size for j in same) // max(1, self.idle)))
        run, size = [], 0
        for job in same:
            if run and size + job.size > share:
                if first in run:
                    return run
                run, size = [], 0
            run.append(job)
            size += job.size
        return run

    def _run(self, i: int) -> None:
        """A decoder: its loop, started again if anything escapes it."""
        try:
            self._work(i)
        except BaseException as exc:  # noqa: BLE001 - the decoder is replaced, never lost
            with self.condition:
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
                now = time.monotonic()
                self.failures[i].append(now)
                crash_loop = (len(self.failures[i]) == self.GIVE_UP and
                              now - self.failures[i][0] < self.GIVE_UP_SECONDS)
                if self.running and not crash_loop:
                    self.restarts += 1
                    self.threads[i] = self._start(i)

    def _work(self, i: int) -> None:
        """Decoder `i`: groups go to `decode(i, requests)`, streams to `stream(i, values)`."""
        while True:
            group = self._take()
            if group is None:
                return
            try:
                self.metrics.batch(sum(j.size for j in group))
                if group[0].stream is not None:
                    self._stream(i, group)
                    continue
                results = self.decode(i, [job.values for job in group])
                for job, result in zip(group, results, strict=True):
                    _answer(job, result, None)
            except Exception as exc:  # every request of the group hears of it; the decoder goes on
                for job in group:
                    _answer(job, None, exc)
            except BaseException as exc:
                for job in group:
                    _answer(job, None, exc)
                raise

    def _stream(self, i: int, group: list[Job]) -> None:
        """Streams drawn together: each step gives every job its pieces, until the end or
        until every client of the group has gone away."""
        import contextlib

        try:
            with contextlib.closing(self.stream_decode(i, [job.values for job in group])) as steps:
                for step in steps:  # one wake-up of the event loop a step, for the whole group
                    _call(group[0], _deliver, [(job, pieces) for job, pieces in zip(group, step, strict=True)
                                               if not job.cancelled.is_set()])
                    if all(job.cancelled.is_set() for job in group):
                        raise Cancelled
            for job in group:
                _answer(job, None, None)
        except Cancelled:  # nobody is left to hear of it
            for job in group:
                _answer(job, None, None)
        except Exception as exc:  # noqa: BLE001 - the streams' own answer
            for job in group:
                _answer(job, None, exc)
        for job in group:
            _call(job, job.stream.put_nowait, None)  # the end


def _call(job: Job, fn, *args) -> None:
    """`fn(*args)` on the job's event loop; nothing when that loop has closed (the server stopped)."""
    try:
        job.loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


def _deliver(pieces: list) -> None:
    """On the event loop: each stream's pieces of one step."""
    for job, piece in pieces:
        job.stream.put_nowait(piece)


def _answer(job: Job, result, error) -> None:
    _call(job, _settle, job.future, result, error)


def _settle(future: asyncio.Future, result, error) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
