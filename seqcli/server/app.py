"""The routes, the request checks and the bounds: a model behind HTTP.

    POST /v1/predict     {"inputs": [...], option: value, ...}  -> {"outputs": [...], "predictions": [...]}
    POST /v1/generate    language models: {"prime": ..., "stream": true} streams server-sent events
    GET  /v1/model       the task, its options (types, bounds, defaults), metrics, versions
    GET  /health         {"status": "ok"}
    GET  /metrics        Prometheus' text format
    GET  /               a page to try the model

What is served is a `Served` (below): seqcli's model (`seqcli serve`) or an export folder's
(`python serve.py` in the folder). Every problem with a request is a 4xx answer
`{"error": "...", "field": ...}` in one line; no request names a file the server reads or
writes.
"""

import asyncio
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DecoderLost, Invalid, Refused

STATIC = Path(__file__).with_name("static")
STREAMED = "stream"
INPUTS = "inputs"


@dataclass
class Settings:
    """The server's bounds; every one is an option of the command that starts it (`OPTIONS`)."""

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


# The command-line options of the bounds: `seqcli serve` and an export folder's serve.py both
# take these, with these defaults and ranges. name -> (type, lowest, highest, help)
OPTIONS = {
    "max_batch": (int, 1, 4096, "Inputs decoded together at most."),
    "batch_wait_ms": (float, 0, 10_000, "How long a request waits for others to share its batch."),
    "max_queue": (int, 1, 100_000, "Requests waiting at most; more are answered 503."),
    "max_inputs": (int, 1, 100_000, "Inputs in one request at most."),
    "max_chars": (int, 1, 10_000_000, "Characters in one input at most."),
    "max_tokens": (int, 1, 1_000_000, "The largest length or max_length a request may ask for."),
    "workers": (int, 1, 64, "Batches decoded at once, each by a decoder process of its own."),
    "max_work": (int, 1, 10**12, "A request's decoding work at most: inputs x beam_size x num_samples x "
                                 "(characters + max_length or length); more is answered 413."),
    "max_connections": (int, 1, 1_000_000, "Connections open at once; one more closes the one idle longest."),
    "header_timeout": (float, 0.1, 3600, "Seconds for a request's line and headers to arrive (else 408)."),
    "request_timeout": (float, 0.1, 86_400, "Seconds for a whole request, body included, to arrive."),
    "grace": (float, 0, 86_400, "Seconds SIGTERM waits for requests in flight before cancelling them."),
}


class Served:
    """What a server serves: a task's options and what its model is. Decoding itself is done
    by the decoders (`workers`), each with a decoding of its own."""

    task: str = ""  # the task's name
    description: str = ""
    params: list[str] = []  # the options a request may give: inputs (or prime), the task's options, its pictures
    pictures: list[str] = []  # options that would write a file: a request asks for their numbers instead
    takes_inputs: bool = True
    varying: str = INPUTS  # what requests decoded together differ in: inputs, or a language model's prime
    streams: bool = False  # a language model that can send its tokens as they are drawn
    streams_together: bool = False  # whether its decoders draw several streams (of equal options) at once

    def options(self, given: dict, pictures: list[str]) -> dict:
        """A request's options (and the pictures asked for) -> every option's value, the
        model's defaults under the given ones, checked: one Invalid naming the option otherwise."""
        raise NotImplementedError

    def schemas(self) -> dict:
        """The options (pictures aside) as JSON Schema: types, bounds, defaults."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What GET /v1/model says besides the task, the options and the limits: `doc`, the
        input's form (`inputs`), `checkpoint`, `metrics`, `versions`."""
        raise NotImplementedError


class Service:
    """The model, its options and the batcher: what the routes call."""

    def __init__(self, model: Served, settings: Settings, decoders: list):
        from .batcher import Batcher
        from .metrics import Metrics

        self.model, self.settings, self.decoders = model, settings, decoders
        self.metrics = Metrics()
        self.batcher = Batcher(self.decode, self.stream, self.metrics, settings.max_batch,
                               settings.batch_wait_ms / 1000, settings.max_queue, len(decoders))
        self.metrics.decoders = lambda: (self.health()[1]["running"], self.restarts())

    # -- requests -----------------------------------------------------------------------------

    def check(self, body) -> tuple[dict, list[str]]:
        """A request's body -> (the checked sample options, the pictures asked for)."""
        model, settings = self.model, self.settings
        if not isinstance(body, dict):
            raise Refused(400, "the body must be a JSON object of the task's options")
        if STREAMED in body and not isinstance(body[STREAMED], bool):
            raise Refused(422, f"{STREAMED}: must be true or false, not {json.dumps(body[STREAMED])[:40]}", STREAMED)
        given = {k: v for k, v in body.items() if k not in ("pictures", STREAMED)}
        for key in given:
            if key not in model.params:
                raise Refused(422, f"{key}: the {model.task} task does not take this option (it takes: "
                                   f"{', '.join(p for p in model.params if p not in model.pictures)})", key)
            if key in model.pictures:
                raise Refused(422, f"{key}: a file the server would write; ask for its numbers with "
                                   f"\"pictures\": [\"{key}\"]", key)
        if model.takes_inputs:
            inputs = given.get(INPUTS)
            if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
                raise Refused(422, "inputs: must be a non-empty list of strings", INPUTS)
            if len(inputs) > settings.max_inputs:
                raise Refused(422, f"inputs: {len(inputs)} inputs; one request takes at most "
                                   f"{settings.max_inputs}", INPUTS)
        for key, value in given.items():
            texts = value if key == INPUTS else [value] if isinstance(value, str) else []
            for i, text in enumerate(texts):
                where = f"{INPUTS}.{i}" if key == INPUTS else key
                if len(text) > settings.max_chars:
                    raise Refused(422, f"{where}: {len(text):,} characters; at most {settings.max_chars:,}", key)
                problem = not_utf8(text, where)
                if problem:
                    raise Refused(422, problem, key)
            if key in ("length", "max_length") and isinstance(value, int) and value > settings.max_tokens:
                raise Refused(422, f"{key}: {value}; this server writes at most {settings.max_tokens} tokens "
                                   f"(--max-tokens)", key)
        pictures = body.get("pictures") or []
        if not isinstance(pictures, list) or any(p not in model.pictures for p in pictures):
            raise Refused(422, f"pictures: a list of the task's pictures ({', '.join(model.pictures) or 'none'})",
                          "pictures")
        try:
            values = model.options(given, pictures)
        except Invalid as exc:
            raise Refused(422, exc.message.replace("\n", " "), exc.field) from None
        for key in ("length", "max_length"):  # the model's own default may exceed the server's bound
            if isinstance(values.get(key), int) and values[key] > settings.max_tokens:
                values[key] = settings.max_tokens
        work = self.work(values)
        if work > settings.max_work:
            raise Refused(413, f"the request asks for {work:,} units of decoding work (inputs x beam_size x "
                               f"num_samples x (characters + max_length or length)); this server takes at most "
                               f"{settings.max_work:,} a request (--max-work): send fewer inputs or ask for less")
        return values, pictures

    def work(self, values: dict) -> int:
        """What decoding a request costs at most, in characters read and tokens written, each
        once per hypothesis: the sum over its inputs (or its prime) of beam_size x num_samples
        x (characters + max_length or length)."""
        texts = values.get(INPUTS) if self.model.takes_inputs else [values.get(self.model.varying) or ""]
        hypotheses = _whole(values.get("beam_size")) * _whole(values.get("num_samples"))
        steps = max(_whole(values.get("max_length"), 0), _whole(values.get("length"), 0))
        return sum(hypotheses * (len(str(text)) + steps) for text in texts or [""])

    async def answer(self, values: dict, pictures: list[str]) -> dict:
        from .batcher import Full, group_key
        from .workers import Failed

        inputs = values.get(INPUTS) or [values.get(self.model.varying) or ""]
        length = sum(len(str(text)) for text in inputs) / len(inputs)
        try:
            job = self.batcher.submit(values, group_key(values, self.model.varying), len(inputs), length=length)
        except Full:
            raise self.busy() from None
        try:
            result = await job.future
        except Invalid as exc:
            raise Refused(422, exc.message.replace("\n", " "), exc.field) from None
        except DecoderLost as exc:
            raise Refused(503, str(exc), headers={"Retry-After": "1"}) from None
        except Exception as exc:  # noqa: BLE001 - the model failed on this request: one line, not a traceback
            raise Refused(500, f"the model failed on this request: {first_line(exc)}") from None
        if isinstance(result, Failed):
            error = result.error
            raise Refused(422, str(error).replace("\n", " "), getattr(error, "field", None))
        out = {"outputs": result["outputs"], "predictions": result["predictions"]}
        if pictures:
            figures = result.get("figures") or {}
            out["pictures"] = {name: figures[name] for name in pictures if name in figures}
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

    def stream(self, i: int, requests: list[dict]):
        """Language-model streams drawn together by decoder `i`: per step, each request's
        pieces of text."""
        for step in self.decoders[i].stream(requests):
            self.metrics.generated(sum(len(pieces) for pieces in step))
            yield step

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
        model = self.model
        return {"task": model.task, "description": model.description, "takes_inputs": model.takes_inputs,
                "streams": model.streams, "options": model.schemas(), "pictures": list(model.pictures),
                "limits": {k: getattr(self.settings, k) for k in
                           ("max_batch", "max_inputs", "max_chars", "max_tokens", "max_body", "max_work")},
                **model.describe()}


def _whole(value, default: int = 1) -> int:
    """An option's count (a beam, samples, a length), or `default` where it has none."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def not_utf8(text: str, where: str) -> str | None:
    """Why a JSON string is not text a tokenizer can take (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{where}: not valid UTF-8 (a lone surrogate at character {exc.start})"
    return None


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def request_schema(model: Served, stream: bool) -> dict:
    """The body of POST /v1/predict (or /v1/generate): the task's options, `pictures`, and
    for generate `stream`."""
    properties = model.schemas()
    for entry in properties.values():
        entry.pop("required", None)
    if model.pictures:
        properties["pictures"] = {"type": "array", "items": {"enum": list(model.pictures)},
                                  "description": "pictures whose numbers the answer carries"}
    if stream:
        properties["stream"] = {"type": "boolean", "default": False,
                                "description": "send each token as a server-sent event as it is drawn"}
    required = [INPUTS] if model.takes_inputs else []
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def create_app(model: Served, settings: Settings, decoders: list, title: str, version: str):
    """The FastAPI application serving `model` with `decoders` (`workers.Local` or `Worker`s)."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles

    service = Service(model, settings, decoders)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, service.close)  # in-flight work finishes

    app = FastAPI(title=title, version=version, lifespan=lifespan, description=model.description or title)
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

    @app.post("/v1/predict", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": request_schema(model, stream=False)}}}})
    async def predict(request: Request):
        """Outputs for the inputs (or a language model's samples), with the task's options."""
        try:
            values, pictures = service.check(await read(request))
            answer = await service.answer(values, pictures)
        except Refused as exc:
            return refuse(exc)
        return JSONResponse(answer)

    @app.post("/v1/generate", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": request_schema(model, stream=True)}}}})
    async def generate(request: Request):
        """A language model's samples; with "stream": true, server-sent events, one per token."""
        try:
            if model.takes_inputs:
                raise Refused(404, f"the {model.task} task takes inputs: use POST /v1/predict")
            body = await read(request)
            values, pictures = service.check(body)
            if not (isinstance(body, dict) and body.get(STREAMED)):
                return JSONResponse(await service.answer(values, pictures))
            if not model.streams:
                raise Refused(422, f"stream: the {model.task} task cannot stream (it has no stream method); "
                                   f"ask without it", STREAMED)
            from .batcher import Full, group_key

            try:
                key = group_key(values, model.varying, streaming=True, together=model.streams_together)
                job = service.batcher.submit(values, key, _whole(values.get("num_samples")), streaming=True)
            except Full:
                raise service.busy() from None
        except Refused as exc:
            return refuse(exc)
        return StreamingResponse(_events(job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/v1/model")
    async def model_info():
        """The task, its input form, its options with types, bounds and defaults, the
        model's metrics, versions."""
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
            return Refused(400, f"Host {host[:100]!r} is not this server's (--allow-host NAME names another)")
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
        except Exception as exc:  # noqa: BLE001 - the stream's own end, in one line
            yield f"event: error\ndata: {json.dumps({'error': first_line(exc)})}\n\n"
            return
        yield "event: done\ndata: {}\n\n"
    finally:
        job.cancelled.set()


def run(app, host: str, port: int, settings: Settings) -> None:
    """Serve `app` until SIGTERM or Ctrl-C, which let in-flight requests finish."""
    import uvicorn

    from . import http

    http.check_connections(settings.max_connections)
    server = _uvicorn_server()(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
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
