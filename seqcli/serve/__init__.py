"""`seqcli serve`: a trained model behind HTTP (FastAPI and uvicorn; `pip install 'seqcli[serve]'`).

    POST /v1/predict     {"inputs": [...], option: value, ...}  -> {"outputs": [...], "predictions": [...]}
    POST /v1/generate    language models: {"prime": ..., "stream": true} streams server-sent events
    GET  /v1/model       the task, its options (types, bounds, defaults), metrics, versions
    GET  /health         {"status": "ok"}
    GET  /metrics        Prometheus' text format
    GET  /               a page to try the model

Requests go through the one inference path `seqcli sample` takes: their options are the
task's `sample` keyword arguments, checked against its signature, with the recipe's `sample:`
values as defaults (`seqcli.inference.sample_options`), and decoded by the task's own
`sample` (several requests at once through `Task.sample_batch`). Every problem with a request
is a 4xx answer `{"error": "...", "field": ...}` in one line; no request names a file the
server reads or writes.
"""


import asyncio
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

from seqcli.api import INPUTS
from seqcli.errors import ConfigError, SeqcliError
from seqcli.serve.decoders import DecoderLost, Failed

STATIC = Path(__file__).with_name("static")
STREAMED = "stream"


def require_fastapi():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SeqcliError("seqcli serve needs FastAPI and uvicorn: pip install 'seqcli[serve]'") from None


@dataclass
class Settings:
    """The server's bounds; every one is a `seqcli serve` option."""

    max_batch: int = 64  # inputs decoded together at most
    batch_wait_ms: float = 5.0  # how long a request waits for others to share its batch
    max_queue: int = 256  # requests waiting at most; more are answered 503
    max_inputs: int = 256  # inputs in one request
    max_chars: int = 10_000  # characters in one input (or prime)
    max_tokens: int = 2_000  # the largest `length` / `max_length` a request may ask for
    max_body: int = 1 << 20  # bytes in a request body
    workers: int = 2  # batches decoded at once, each by a decoder of its own
    processes: bool = True  # each decoder a worker process with its own model (else a thread of the server's)
    threads: int | None = None  # compute threads per decoder (None: the cores shared among the decoders)
    api_key: str | None = None
    max_work: int = 200_000  # a request's decoding work at most: see `Service.work`
    max_header: int = 64 << 10  # bytes in a request's line and headers
    header_timeout: float = 10.0  # seconds for a request's head to arrive
    request_timeout: float = 60.0  # seconds for a whole request (head and body) to arrive
    max_connections: int = 1000  # connections open at once
    grace: float = 30.0  # seconds SIGTERM waits for requests in flight before cancelling them
    allow_hosts: tuple = ()  # Host names answered besides IP addresses and localhost ("*": any)


class Refused(Exception):
    """A request answered with `status` and a one-line JSON error."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


class Service:
    """The model, its options and the batcher: what the routes call."""

    def __init__(self, loaded, settings: Settings, run: str, decoders: list):
        from seqcli import inference
        from seqcli.serve.batcher import Batcher
        from seqcli.serve.metrics import Metrics

        self.loaded, self.settings, self.run = loaded, settings, run
        self.task, self.recipe = loaded.task, loaded.recipe
        self.params = inference.sample_parameters(type(self.task))
        self.pictures = list(inference.outputs(self.params))
        self.takes_inputs = INPUTS in self.params
        self.varying = INPUTS if self.takes_inputs else self.task.batched_option  # what requests decoded together differ in
        self.streams = hasattr(self.task, "stream")
        self.metrics = Metrics()
        self.decoders = decoders
        self.batcher = Batcher(self.decode, self.stream, self.metrics, settings.max_batch,
                               settings.batch_wait_ms / 1000, settings.max_queue, len(decoders))
        self.metrics.decoders = lambda: (self.health()[1]["running"], self.restarts())

    # -- requests -----------------------------------------------------------------------------

    def check(self, body, endpoint: str) -> tuple[dict, list[str]]:
        """A request's body -> (the checked sample options, the pictures asked for)."""
        from seqcli import inference
        from seqcli.schema import check_text

        if not isinstance(body, dict):
            raise Refused(400, "the body must be a JSON object of the task's options")
        if STREAMED in body and not isinstance(body[STREAMED], bool):
            raise Refused(422, f"{STREAMED}: must be true or false, not {json.dumps(body[STREAMED])[:40]}", STREAMED)
        given = {k: v for k, v in body.items() if k not in ("pictures", STREAMED)}
        for key in given:
            if key not in self.params:
                raise Refused(422, f"{key}: the {self.recipe.task.name} task does not take this option (it takes: "
                                   f"{', '.join(p for p in self.params if p not in self.pictures)})", key)
            if key in self.pictures:
                raise Refused(422, f"{key}: a file the server would write; ask for its numbers with "
                                   f"\"pictures\": [\"{key}\"]", key)
        if self.takes_inputs:
            inputs = given.get(INPUTS)
            if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
                raise Refused(422, "inputs: must be a non-empty list of strings", INPUTS)
            if len(inputs) > self.settings.max_inputs:
                raise Refused(422, f"inputs: {len(inputs)} inputs; one request takes at most "
                                   f"{self.settings.max_inputs}", INPUTS)
        for key, value in given.items():
            texts = value if key == INPUTS else [value] if isinstance(value, str) else []
            for i, text in enumerate(texts):
                where = f"{INPUTS}.{i}" if key == INPUTS else key
                if len(text) > self.settings.max_chars:
                    raise Refused(422, f"{where}: {len(text):,} characters; at most {self.settings.max_chars:,}", key)
                try:
                    check_text(text, where)
                except SeqcliError as exc:
                    raise Refused(422, str(exc), key) from None
            if key in ("length", "max_length") and isinstance(value, int) and value > self.settings.max_tokens:
                raise Refused(422, f"{key}: {value}; this server writes at most {self.settings.max_tokens} tokens "
                                   f"(seqcli serve --max-tokens)", key)
        pictures = body.get("pictures") or []
        if not isinstance(pictures, list) or any(p not in self.pictures for p in pictures):
            raise Refused(422, f"pictures: a list of the task's pictures ({', '.join(self.pictures) or 'none'})",
                          "pictures")
        try:
            values = inference.sample_options(self.task, self.recipe, {**given, **{p: "picture.png" for p in pictures}})
        except ConfigError as exc:
            raise Refused(422, f"{exc.key}: {exc.message}", exc.key) from None
        except SeqcliError as exc:
            raise Refused(422, str(exc)) from None
        for key in ("length", "max_length"):  # the recipe's own value may exceed the server's bound
            if isinstance(values.get(key), int) and values[key] > self.settings.max_tokens:
                values[key] = self.settings.max_tokens
        work = self.work(values)
        if work > self.settings.max_work:
            raise Refused(413, f"the request asks for {work:,} units of decoding work (inputs x beam_size x "
                               f"num_samples x (characters + max_length or length)); this server takes at most "
                               f"{self.settings.max_work:,} a request (seqcli serve --max-work): send fewer inputs "
                               f"or ask for less")
        return values, pictures

    def work(self, values: dict) -> int:
        """What decoding a request costs at most, in characters read and tokens written, each
        once per hypothesis: the sum over its inputs (or its prime) of beam_size x num_samples
        x (characters + max_length or length)."""
        texts = values.get(INPUTS) if self.takes_inputs else [values.get(self.varying) or ""]
        hypotheses = _whole(values.get("beam_size")) * _whole(values.get("num_samples"))
        steps = max(_whole(values.get("max_length"), 0), _whole(values.get("length"), 0))
        return sum(hypotheses * (len(str(text)) + steps) for text in texts or [""])

    async def answer(self, values: dict, pictures: list[str]) -> dict:
        from seqcli.serve.batcher import Full, group_key

        inputs = values.get(INPUTS) or [values.get(self.varying) or ""]
        length = sum(len(str(text)) for text in inputs) / len(inputs)
        try:
            job = self.batcher.submit(values, group_key(values, self.varying), len(inputs), length=length)
        except Full:
            raise self.busy() from None
        try:
            samples = await job.future
        except SeqcliError as exc:
            raise Refused(422, str(exc).replace("\n", " ")) from None
        except DecoderLost as exc:
            raise Refused(503, str(exc), headers={"Retry-After": "1"}) from None
        except Exception as exc:  # noqa: BLE001 - the model failed on this request: one line, not a traceback
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise Refused(500, f"the model failed on this request: {why}") from None
        if isinstance(samples, Failed):
            raise Refused(422, str(samples.error).replace("\n", " "))
        out = {"outputs": samples.lines, "predictions": [p.to_data() for p in samples.typed()]}
        if pictures:
            out["pictures"] = {name: samples.figures[name].data for name in pictures if name in samples.figures}
        return out

    def health(self) -> tuple[str | None, dict]:
        """Why nothing can be decoded now (or None), and the decoders: running, of, restarts."""
        running = sum(t.is_alive() and d.down is None for t, d in zip(self.batcher.threads, self.decoders))
        decoders = {"running": running, "of": len(self.decoders), "restarts": self.restarts()}
        reason = self.batcher.health()
        if reason is None and not running:
            reason = f"no decoder process can start: {self.decoders[0].down}"
        return reason, decoders

    def busy(self) -> Refused:
        """The answer to a request the queue cannot take."""
        reason, _ = self.health()
        if reason is not None:
            return Refused(503, f"the server cannot decode: {reason}")
        return Refused(503, "the server is busy: its queue is full; try again shortly", headers={"Retry-After": "1"})

    # -- the decoder threads' side ------------------------------------------------------------

    def decode(self, i: int, requests: list[dict]) -> list:
        """One group's requests, decoded together by decoder `i`."""
        results = self.decoders[i].decode(requests)
        if "length" in requests[0]:
            self.metrics.generated(sum(r.get("length", 0) * r.get("num_samples", 1) for r in requests))
        return results

    def stream(self, i: int, values: dict):
        """A language model's pieces of text as decoder `i` draws them."""
        for pieces in self.decoders[i].stream(values):
            self.metrics.generated(len(pieces))
            yield pieces

    def restarts(self) -> int:
        """Decoders started again: threads the batcher replaced, and worker processes."""
        return self.batcher.restarts + sum(d.restarts for d in self.decoders)

    def close(self) -> None:
        """Let the work in flight finish, then stop the decoders."""
        self.batcher.stop()
        for decoder in self.decoders:
            decoder.close()

    # -- what the model is ----------------------------------------------------------------------

    def describe(self) -> dict:
        import inspect

        import torch

        from seqcli import __version__
        from seqcli.serve.schema import options_schema

        ckpt = self.loaded.checkpoint
        options = options_schema(self.params, self.recipe.sample, skip=self.pictures)
        return {
            "task": self.recipe.task.name, "description": self.recipe.description,
            "doc": inspect.getdoc(self.task.sample) or "",
            "takes_inputs": self.takes_inputs, "streams": self.streams,
            INPUTS: _form(self.loaded.fields, self.takes_inputs), "options": options,
            "pictures": self.pictures, "limits": {k: getattr(self.settings, k) for k in
                                                  ("max_batch", "max_inputs", "max_chars", "max_tokens", "max_body", "max_work")},
            "checkpoint": {"path": ckpt.path, "step": ckpt.step, "epoch": ckpt.epoch,
                           "best": ckpt.best.to_state() if ckpt.best else None},
            "metrics": self.run_metrics(),
            **({"ensemble": [{"path": m.path, "step": m.step, "metrics": self.run_metrics(m)}
                             for m in self.loaded.members]} if self.loaded.members else {}),
            "versions": {"seqcli": __version__, "trained_with": ckpt.seqcli_version, "torch": torch.__version__,
                         "plugins": {k: {"name": r.name, "package": r.package, "version": r.version}
                                     for k, r in ckpt.plugins.items()}},
        }

    def run_metrics(self, ckpt=None) -> dict:
        """The validation record of the checkpoint served (of an ensemble, its first member),
        or of `ckpt`, from its run's metrics.jsonl."""
        from seqcli import runfolder

        given = ckpt is not None
        ckpt = ckpt or self.loaded.checkpoint
        folder = (None if given else runfolder.of_checkpoint(self.run)) or runfolder.of_checkpoint(ckpt.path)
        records = folder.validation_records() if folder is not None else []
        step = ckpt.best.step if ckpt.best else ckpt.step
        return next((r for r in records if r.get("step") == step), ckpt.metrics or {})


def _whole(value, default: int = 1) -> int:
    """An option's count (a beam, samples, a length), or `default` where it has none."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _form(fields: dict, takes_inputs: bool) -> dict:
    """What an input is, for the page: text, numbers ('a b; c d') or a label."""
    from seqcli.vocab import Labels, Numeric, Vocab

    if not takes_inputs:
        return {"kind": "prime"}
    for name in ("source", "input", "condition", "label"):
        field = fields.get(name)
        if isinstance(field, Labels):
            return {"kind": "label", "labels": field.names}
        if isinstance(field, Numeric):
            return {"kind": "numbers", "dim": field.dim, "steps": field.steps}
        if isinstance(field, Vocab):
            return {"kind": "text", "level": field.level}
    return {"kind": "text"}


def _runs(run) -> list[str]:
    """One run (a run directory or a checkpoint file) or several (an ensemble), as a list."""
    return [str(r) for r in run] if isinstance(run, (list, tuple)) else [str(run)]


def decoders(runs: list[str], loaded, settings: Settings, which: str, device: str) -> list:
    """`settings.workers` decoders: worker processes, each loading the model (in parallel,
    before the server answers anything), or the server's own model for every thread."""
    from concurrent.futures import ThreadPoolExecutor

    from seqcli.serve.decoders import Decoding, Local, Worker
    from seqcli.train.threads import default_threads

    if not settings.processes:
        return [Local(Decoding(loaded))] * settings.workers
    threads = settings.threads or max(1, default_threads() // settings.workers)
    workers = [Worker(runs, which, device, threads, f"seqcli-decoder-{i}") for i in range(settings.workers)]
    with ThreadPoolExecutor(len(workers)) as pool:
        started = [pool.submit(w.start) for w in workers]
    try:
        for future in started:
            future.result()
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


def create_app(run, settings: Settings, which: str = "best", device: str = "cpu"):
    """The FastAPI application serving `run` (a run directory or a checkpoint file; a list of
    them: one ensemble)."""
    require_fastapi()
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles

    from seqcli import __version__, inference
    from seqcli.serve.schema import request_schema

    runs = _runs(run)
    loaded = inference.load(runs, which, device)
    service = Service(loaded, settings, runs[0], decoders(runs, loaded, settings, which, device))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, service.close)  # in-flight work finishes

    app = FastAPI(title=f"seqcli: {loaded.recipe.task.name}", version=__version__, lifespan=lifespan,
                  description=loaded.recipe.description or "A model trained with seqcli.")
    app.state.service = service

    def refuse(exc: Refused) -> JSONResponse:
        body = {"error": exc.message} | ({"field": exc.field} if exc.field else {})
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    app.add_middleware(Guard, service=service, settings=settings)

    async def read(request: Request):
        from starlette.requests import ClientDisconnect

        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > settings.max_body:
                    raise Refused(413, f"the body is over {settings.max_body:,} bytes")
        except ClientDisconnect:
            raise Refused(400, "the client went away before its body arrived") from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise Refused(400, f"malformed JSON: {str(exc).splitlines()[0] if str(exc) else 'nested too deeply'}") \
                from None

    predict_schema = request_schema(service.params, loaded.recipe.sample, service.pictures, stream=False)

    @app.post("/v1/predict", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": predict_schema}}}})
    async def predict(request: Request):
        """Outputs for the inputs (or a language model's samples), with the task's options."""
        try:
            values, pictures = service.check(await read(request), "predict")
            answer = await service.answer(values, pictures)
        except Refused as exc:
            return refuse(exc)
        return JSONResponse(answer)

    @app.post("/v1/generate", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": request_schema(service.params, loaded.recipe.sample, service.pictures,
                                                      stream=True)}}}})
    async def generate(request: Request):
        """A language model's samples; with "stream": true, server-sent events, one per token."""
        try:
            if service.takes_inputs:
                raise Refused(404, f"the {loaded.recipe.task.name} task takes inputs: use POST /v1/predict")
            body = await read(request)
            values, pictures = service.check(body, "generate")
            if not (isinstance(body, dict) and body.get(STREAMED)):
                return JSONResponse(await service.answer(values, pictures))
            if not service.streams:
                raise Refused(422, f"stream: the {loaded.recipe.task.name} task cannot stream (it has no stream "
                                   f"method); ask without it", STREAMED)
            from seqcli.serve.batcher import Full

            try:
                job = service.batcher.submit(values, "stream", 1, streaming=True)
            except Full:
                raise service.busy() from None
        except Refused as exc:
            return refuse(exc)
        return StreamingResponse(_events(job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/v1/model")
    async def model_info():
        """The task, its input form, its options with types, bounds and defaults, the run's
        metrics at the checkpoint served, versions."""
        return service.describe()

    @app.get("/health")
    async def health():
        """ok while a decoder runs; 503 and the reason when none can decode."""
        reason, decoders = service.health()
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason, "decoders": decoders}, status_code=503)
        return {"status": "ok", "decoders": decoders}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(service.metrics.text(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


ENDPOINTS = ("/v1/predict", "/v1/generate", "/v1/model", "/health", "/metrics", "/")


class Guard:
    """An ASGI middleware (a plain one: Starlette's BaseHTTPMiddleware costs a task per
    request) that checks the API key and the declared body size, and counts every answer."""

    def __init__(self, app, service: Service, settings: Settings):
        self.app, self.service, self.settings = app, service, settings
        self.expected = f"Bearer {settings.api_key}".encode() if settings.api_key is not None else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.responses import JSONResponse

        started, path, status = time.perf_counter(), scope["path"], [500]

        async def counting(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        headers = dict(scope["headers"])
        refused = self.foreign(headers, scope["method"])
        if refused is None and self.expected is not None and (path.startswith("/v1/") or path == "/metrics") and \
                not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            refused = Refused(401, "missing or wrong API key (Authorization: Bearer KEY)",
                              headers={"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length")
        if refused is None and length is not None and (not length.isdigit() or int(length) > self.settings.max_body):
            refused = Refused(413, f"the body is over {self.settings.max_body:,} bytes")
        if refused is not None:
            response = JSONResponse({"error": refused.message}, status_code=refused.status, headers=refused.headers)
            await response(scope, receive, counting)
        else:
            await self.app(scope, receive, counting)
        endpoint = path if path in ENDPOINTS else "other"
        self.service.metrics.request(endpoint, status[0], time.perf_counter() - started)

    def foreign(self, headers: dict, method: str) -> Refused | None:
        """A request a web page made without the user meaning it: a Host that is not this
        server's (DNS rebinding), an Origin of another site, or a body that is not JSON (a
        cross-site form or "simple" request)."""
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        if host and not host_allowed(host, self.settings.allow_hosts):
            return Refused(400, f"Host {host[:100]!r} is not this server's (seqcli serve --allow-host NAME names "
                                f"another)")
        origin = headers.get(b"origin")
        if origin is not None:
            origin = origin.decode("latin-1").strip().lower()
            named = origin.split("://", 1)[-1].rstrip("/")
            if origin == "null" or (named != host and not host_allowed(named, self.settings.allow_hosts,
                                                                       literal=False)):
                return Refused(403, f"cross-site requests are refused (Origin {origin[:100]!r} is not this server)")
        if method in ("POST", "PUT", "PATCH"):
            kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if kind != "application/json":
                return Refused(415, f"Content-Type must be application/json, not {kind[:60] or 'missing'}")
        return None


def host_allowed(host: str, allowed: tuple, literal: bool = True) -> bool:
    """Whether a Host header (name[:port]) names this server: an IP address or localhost (when
    `literal`), or a name in `allowed` ("*" allows any)."""
    import ipaddress

    if "*" in allowed:
        return True
    name = host
    if name.startswith("["):
        name = name[1:name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name in allowed:
        return True
    if not literal:
        return False
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def _events(job):
    """Server-sent events: `data: {"pieces": [...]}` per token, then `event: done` (or
    `event: error`); a client that goes away stops the generation."""
    try:
        while True:
            pieces = await job.stream.get()
            if pieces is None:
                break
            yield f"data: {json.dumps({'pieces': pieces})}\n\n"
        try:
            await job.future
        except SeqcliError as exc:
            yield f"event: error\ndata: {json.dumps({'error': str(exc)})}\n\n"
            return
        yield "event: done\ndata: {}\n\n"
    finally:
        job.cancelled.set()


def serve(run, host: str, port: int, settings: Settings, threads: int | None, which: str = "best",
          device: str = "cpu", log=print) -> None:
    """Run the server until SIGTERM or Ctrl-C, which let in-flight requests finish."""
    import uvicorn

    from seqcli.train.threads import default_threads, use_threads

    # decoders at once share the cores: each batch's small matrix products use one or two
    # threads well, and two decoders keep both cores of a small host busy
    settings.threads = threads
    use_threads(1 if settings.processes else threads or max(1, default_threads() // settings.workers))
    app = create_app(run, settings, which, device)
    runs = _runs(run)
    what = runs[0] if len(runs) == 1 else f"an ensemble of {len(runs)} ({', '.join(runs)})"
    log(f"serving {what} ({app.state.service.recipe.task.name}) on http://{host}:{port}/ (API: /docs)")
    from seqcli.serve import http

    http.check_connections(settings.max_connections)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                    http=http.protocol(settings), timeout_keep_alive=5,
                                    timeout_graceful_shutdown=settings.grace))
    server.run()


def _uvicorn_server():
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, whose SIGTERM and Ctrl-C end in a clean exit: it stops taking
        connections, lets the requests in flight finish, and returns (uvicorn itself raises
        the signal again once it has stopped, so the process would die of it)."""

        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def _Server(config):
    return _uvicorn_server()(config)
