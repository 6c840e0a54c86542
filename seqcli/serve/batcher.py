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
    cancelled: threading.Event = field(default_factory=threading.Event)


def group_key(values: dict, varying: str) -> str:
    """What must be equal for two requests to be decoded together."""
    rest = {k: v for k, v in values.items() if k != varying}
    sampling = values.get("temperature", 0) and values.get("seed") is not None
    if sampling or any(k.endswith("_plot") and v is not None for k, v in values.items()):
        return f"alone-{next(_unique)}"
    return json.dumps(rest, sort_keys=True, default=str)


_unique = itertools.count()


class Batcher:
    def __init__(self, decode, stream, metrics, max_batch: int, wait: float, max_queue: int, workers: int = 1):
        self.decode, self.stream_decode, self.metrics = decode, stream, metrics
        self.max_batch, self.wait, self.max_queue = max_batch, wait, max_queue
        self.pending: deque[Job] = deque()
        self.condition = threading.Condition()
        self.running = True
        self.threads = [threading.Thread(target=self._work, name=f"seqcli-decoder-{i}", daemon=True)
                        for i in range(workers)]
        for thread in self.threads:
            thread.start()

    # -- the event loop's side ---------------------------------------------------------------

    def submit(self, values: dict, key: str, size: int, streaming: bool = False) -> Job:
        loop = asyncio.get_running_loop()
        job = Job(values, key, size, loop, loop.create_future(), asyncio.Queue() if streaming else None)
        with self.condition:
            if len(self.pending) >= self.max_queue:
                raise Full
            self.pending.append(job)
            self.metrics.queue = len(self.pending)
            self.condition.notify()
        return job

    def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        with self.condition:
            self.running = False
            self.condition.notify_all()
        for thread in self.threads:
            thread.join()

    # -- the worker's side ---------------------------------------------------------------------

    def _take(self) -> list[Job] | None:
        """The next group: the oldest request and those queued with its key, once its wait is
        over or the batch is full."""
        with self.condition:
            while not self.pending:
                if not self.running:
                    return None
                self.condition.wait()
            first = self.pending[0]
            deadline = time.monotonic() + self.wait
            while self.running:
                queued = sum(j.size for j in self.pending if j.key == first.key)
                left = deadline - time.monotonic()
                if queued >= self.max_batch or left <= 0 or first.stream is not None:
                    break
                self.condition.wait(left)
            group, size = [], 0
            for job in list(self.pending):
                if job.key == first.key and (not group or size + job.size <= self.max_batch):
                    group.append(job)
                    size += job.size
                    self.pending.remove(job)
            self.metrics.queue = len(self.pending)
            return group

    def _work(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            self.metrics.batch(sum(j.size for j in group))
            if group[0].stream is not None:
                self._stream(group[0])
                continue
            try:
                results = self.decode([job.values for job in group])
            except BaseException as exc:  # noqa: BLE001 - every request of the group hears of it
                for job in group:
                    job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
                continue
            for job, result in zip(group, results):
                job.loop.call_soon_threadsafe(_settle, job.future, result, None)

    def _stream(self, job: Job) -> None:
        try:
            for pieces in self.stream_decode(job.values):
                if job.cancelled.is_set():
                    raise Cancelled
                job.loop.call_soon_threadsafe(job.stream.put_nowait, pieces)
            job.loop.call_soon_threadsafe(_settle, job.future, None, None)
        except BaseException as exc:  # noqa: BLE001
            job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
        job.loop.call_soon_threadsafe(job.stream.put_nowait, None)  # the end


def _settle(future: asyncio.Future, result, error) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
