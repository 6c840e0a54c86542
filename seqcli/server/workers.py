"""Who decodes the server's batches: the model in the server's own process (`Local`), or a
copy of it in a worker process of its own (`Worker`, the default).

Decoding is a Python loop over small tensor operations, and a Python thread holds the GIL
for all of it but the operations themselves: decoder threads in the server's process share
the GIL with the event loop that parses requests, so under load the server uses little more
than one core however many it has. A worker process has its own interpreter: the event loop
and every decoder then run at once. The cost is memory (each process holds the model and
its runtime) and start-up (each process loads the model).

A decoding is what a loader returns: `loader(*args)` is an object with `decode(requests) ->
list of results` (one per request: {"outputs", "predictions", "figures"}, or `Failed`) and
`stream(requests)`, which yields, step by step, each request's pieces of text as a language
model draws them (several streams drawn together; one, unless `Served.streams_together`). The
loader is named "module:function", so a worker process imports it afresh. Both kinds run the
same decoding; a group's results and errors cross the pipe as plain data. A worker process
that dies (killed, out of memory) is `DecoderLost` for the group it held, and is started
again for the next one.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal

from .errors import DecoderLost, Invalid, Unservable


class Failed:
    """A request of a group that failed on its own: raised when its answer is read."""

    def __init__(self, error: Exception):
        self.error = error


def loaded(loader: str, args: tuple):
    """The decoding `loader` ("module:function") gives for `args`."""
    module, _, function = loader.partition(":")
    return getattr(importlib.import_module(module), function)(*args)


def one_by_one(decode, requests: list[dict], invalid: tuple) -> list:
    """`decode(requests)`; where it fails with one of the `invalid` errors, the group again
    one request at a time, so that only the request the model cannot take fails (`Failed`)."""
    try:
        return decode(requests)
    except invalid:
        if len(requests) == 1:
            raise
    results = []
    for values in requests:
        try:
            results.append(decode([values])[0])
        except invalid as exc:
            results.append(Failed(exc))
    return results


class Local:
    """Decoding in the server's own process (a decoder thread calls it)."""

    restarts, down = 0, None

    def __init__(self, decoding):
        self.decoding = decoding

    def decode(self, requests: list[dict]) -> list:
        return self.decoding.decode(requests)

    def stream(self, requests: list[dict]):
        return self.decoding.stream(requests)

    def close(self) -> None:
        pass


class Worker:
    """Decoding in a process of its own, with its own copy of the model; one decoder thread
    of the batcher sends it groups and waits (without the GIL) for their results."""

    def __init__(self, loader: str, args: tuple, name: str):
        self.spec, self.name = (loader, args), name
        self.process, self.conn, self.restarts = None, None, 0
        self.down: str | None = None  # why the process cannot be started again, once it could not

    def start(self) -> None:
        """Start the process and wait until its model is loaded (a failure is one line)."""
        context = multiprocessing.get_context("spawn")  # never fork a process whose threads hold locks
        mine, theirs = context.Pipe()
        self.process = context.Process(target=main, args=(theirs, *self.spec), name=self.name, daemon=True)
        self.process.start()
        theirs.close()
        self.conn = mine
        try:
            kind, payload = mine.recv()
        except EOFError:
            raise Unservable(f"{self.name}: the decoder process exited while loading the model "
                              f"({describe_exit(self.process)})") from None
        if kind != "ready":
            raise unpack(payload)

    def _ready(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        self.restarts += 1
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 - the checkpoint gone, memory short: this decoder is down
            self.process = None
            self.down = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DecoderLost(f"the decoder process cannot start again: {self.down}") from None
        self.down = None

    def _lost(self) -> DecoderLost:
        self.process.join(1.0)
        why = describe_exit(self.process)
        self.process = None
        return DecoderLost(f"the decoder process exited ({why}) while decoding this request; try again")

    def decode(self, requests: list[dict]) -> list:
        self._ready()
        try:
            self.conn.send(("decode", requests))
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            raise self._lost() from None
        if kind != "ok":
            raise unpack(payload)
        return [Failed(unpack(r.error)) if isinstance(r, Failed) else r for r in payload]

    def stream(self, requests: list[dict]):
        self._ready()
        ended = False
        try:
            self.conn.send(("stream", requests))
            while True:
                kind, payload = self.conn.recv()
                if kind == "piece":
                    yield payload
                    continue
                ended = True
                if kind != "ok":
                    raise unpack(payload)
                return
        except (EOFError, OSError):
            ended = True
            raise self._lost() from None
        finally:
            if not ended:  # the reader stopped (its client went away): the process stops drawing
                try:
                    self.conn.send(("cancel", None))
                    while self.conn.recv()[0] == "piece":
                        pass
                except (EOFError, OSError):
                    self.process = None

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.conn.send(("stop", None))
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def describe_exit(process) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def pack(exc: BaseException) -> tuple:
    """An error as plain data for the pipe (Invalid and Unservable keep their kind)."""
    if isinstance(exc, Invalid):
        return "Invalid", exc.message, exc.field
    if isinstance(exc, Unservable):
        return "Unservable", str(exc), None
    return type(exc).__name__, str(exc), None


def unpack(packed: tuple) -> Exception:
    kind, message, field = packed
    if kind == "Invalid":
        return Invalid(message, field)
    if kind == "Unservable":
        return Unservable(message)
    return RuntimeError(f"{kind}: {message}" if message else kind)


def plain(result):
    """A decoded result the pipe can carry."""
    return Failed(pack(result.error)) if isinstance(result, Failed) else result


def main(conn, loader: str, args: tuple) -> None:
    """A worker process: load the model (`loader(*args)`), then decode what the server sends
    until it says stop or goes away. Signals are the server's to handle: it lets the work in
    flight finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        decoding = loaded(loader, args)
    except BaseException as exc:  # noqa: BLE001 - told to the server, which says it in one line
        conn.send(("error", pack(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        if kind == "stop":
            return
        try:
            if kind == "decode":
                conn.send(("ok", [plain(r) for r in decoding.decode(payload)]))
            elif kind == "stream":
                for pieces in decoding.stream(payload):
                    if conn.poll() and conn.recv()[0] in ("cancel", "stop"):
                        break
                    conn.send(("piece", pieces))
                conn.send(("ok", None))
            # a "cancel" that arrives after its stream ended is nothing to do
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - the group's answer
            conn.send(("error", pack(exc)))


def start(loader: str, args: tuple, count: int, name: str) -> list[Worker]:
    """`count` worker processes, each loading `loader(*args)`, started in parallel; the first
    that cannot load the model stops them all, in one line (Unservable)."""
    from concurrent.futures import ThreadPoolExecutor

    workers = [Worker(loader, args, f"{name}-{i}") for i in range(count)]
    with ThreadPoolExecutor(count) as pool:
        started = [pool.submit(w.start) for w in workers]
    try:
        for future in started:
            future.result()
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers
