"""Serve this exported model over HTTP, with numpy and onnxruntime alone (no torch, no seqcli).

    pip install -r requirements-serve.txt
    python serve.py                        # http://127.0.0.1:8000/ : the page; the API at /docs
    python serve.py --help                 # the bounds: batch, queue, request sizes, timeouts

The server is seqcli's own (the server/ folder beside this file, as `seqcli serve` runs it):
the same endpoints (POST /v1/predict, POST /v1/generate with streaming, GET /v1/model,
/health, /metrics, the page at /), the same request and response schema, limits, batching,
metrics and page. The model is run.py's: its options are those run.py applies, checked
against the bounds and defaults in config.json, as `seqcli sample` checks them. Sampling
draws from numpy's generator, so a seeded sample differs from seqcli's (greedy and beam
outputs are the same); pictures (attention plots) are seqcli's alone.
"""

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run as runner  # noqa: E402 - run.py, beside this file
from server.app import INPUTS, OPTIONS, Served, Settings  # noqa: E402
from server.errors import Invalid, Unservable  # noqa: E402
from server.workers import one_by_one  # noqa: E402


def named(name: str) -> str:
    """An option as a request names it (run.py's messages name its flag: --n-best)."""
    return name


class Exported(Served):
    """The exported model as the server serves it."""

    def __init__(self, folder: Path = HERE):
        self.folder = Path(folder)
        self.config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
        self.kind, self.task = self.config["kind"], self.config["task"]
        self.description = self.config.get("description") or ""
        self.takes_inputs = self.kind != "generator"
        self.varying = INPUTS if self.takes_inputs else "prime"
        self.streams = self.streams_together = not self.takes_inputs
        self.taken = runner.runner_options(self.config)  # name -> JSON Schema
        self.params = ([INPUTS] if self.takes_inputs else []) + list(self.taken)
        self.pictures = []
        field = self.config["use"]["field"] if self.kind == "generator" else None
        self.vocab = runner.Field(json.loads((self.folder / "fields" / f"{field}.json").read_text(encoding="utf-8")),
                                  self.folder, field) if field else None  # a prime is checked as it arrives

    def defaults(self) -> dict:
        """Each option's value when a request does not give it: the recipe's, else the task's."""
        sample = self.config.get("sample", {})
        return {name: sample.get(name, schema.get("default")) for name, schema in self.taken.items()}

    def options(self, given: dict, pictures: list[str]) -> dict:
        for name, value in given.items():
            if name != INPUTS and not conforms(value, self.taken[name]):
                raise Invalid(f"{name}: must be {runner.describe(self.taken[name])}"
                              f"{' or null' if nullable(self.taken[name]) else ''}, got {json.dumps(value)[:40]}",
                              name)
        values = {**self.defaults(), **given}
        try:
            runner.check_options({k: v for k, v in values.items() if k != INPUTS and v is not None}, self.config,
                                 self.kind, named)
        except runner.Failure as exc:
            raise Invalid(str(exc), getattr(exc, "option", None)) from None
        if self.vocab is not None:
            try:
                runner.known(self.vocab, values.get("prime") or "")
            except runner.Failure as exc:
                raise Invalid(str(exc), "prime") from None
        return values

    def schemas(self) -> dict:
        schemas = self.config.get("options") or {}
        defaults = self.defaults()
        out = {INPUTS: dict(schemas[INPUTS])} if self.takes_inputs and INPUTS in schemas else {}
        for name, schema in self.taken.items():
            out[name] = {**{k: v for k, v in schema.items() if k != "required"}, "default": defaults[name]}
        return out

    def describe(self) -> dict:
        import numpy

        served = self.config.get("served") or {}
        runtime = {}
        try:
            import onnxruntime

            runtime["onnxruntime"] = onnxruntime.__version__
        except ImportError:
            pass
        return {"doc": served.get("doc", ""), INPUTS: served.get(INPUTS, {"kind": "text"}),
                "checkpoint": served.get("checkpoint") or {}, "metrics": served.get("metrics") or {},
                "export": {"format": next(iter(self.config["graphs"].values()))["file"].rsplit(".", 1)[-1],
                           "quantized": self.config.get("quantized")},
                "versions": {"seqcli": self.config["seqcli_version"], "numpy": numpy.__version__, **runtime,
                             "plugins": {}}}


def conforms(value, schema: dict) -> bool:
    """Whether a JSON value is of the option's type (integer, number, string, boolean, an enum; null where allowed)."""
    if value is None:
        return nullable(schema)
    for kind in [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]:
        if "enum" in kind:
            return value in kind["enum"]
        wanted = kind.get("type")
        if wanted == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if wanted == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if wanted == "string" and isinstance(value, str) or wanted == "boolean" and isinstance(value, bool):
            return True
        if wanted is None:
            return True
    return False


def nullable(schema: dict) -> bool:
    return any(s.get("type") == "null" for s in schema.get("anyOf", []))


class Decoding:
    """A decoder's model: groups of checked requests and streams, through run.py."""

    def __init__(self, folder: Path, threads: int | None):
        self.model = runner.Model(folder, threads)

    def decode(self, requests: list[dict]) -> list:
        return one_by_one(self._together, requests, Invalid)

    def _together(self, requests: list[dict]) -> list[dict]:
        try:
            if self.model.kind == "generator":
                return [generated(self.model.generate(**r)) for r in requests]
            options = {k: v for k, v in requests[0].items() if k != INPUTS}
            every = [text for r in requests for text in r[INPUTS]]
            predictions = self.model.predictions(every, **options)
        except runner.Failure as exc:
            raise Invalid(str(exc), getattr(exc, "option", None)) from None
        out, start = [], 0
        for r in requests:
            part = predictions[start:start + len(r[INPUTS])]
            out.append({"outputs": [p["text"] for p in part], "predictions": part, "figures": {}})
            start += len(r[INPUTS])
        return out

    def stream(self, requests: list[dict]):
        """Streams drawn together: their options are equal but for the prime."""
        options = {k: v for k, v in requests[0].items() if k != "prime"}
        try:
            yield from self.model.streams([r.get("prime", "") for r in requests], **options)
        except runner.Failure as exc:
            raise Invalid(str(exc)) from None


def generated(samples: list[str]) -> dict:
    """A language model's samples, as seqcli answers them: each its own single hypothesis."""
    return {"outputs": samples, "predictions": [{"text": s, "hypotheses": [{"output": s, "score": None}]}
                                                for s in samples], "figures": {}}


def load(folder: str, threads: int | None) -> Decoding:
    """A worker process's decoding: the model loaded afresh, with `threads` compute threads."""
    try:
        return Decoding(Path(folder), threads)
    except (OSError, ValueError, runner.Failure) as exc:
        raise Unservable(f"cannot load the model in {folder}: {exc}") from None


def arguments(argv=None):
    parser = argparse.ArgumentParser(description="Serve this exported model over HTTP (the API at /docs, a page at /).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="The address to listen on (another than 127.0.0.1 exposes the model).")
    parser.add_argument("--port", type=int, default=8000, help="The port.")
    for name, (kind, lowest, highest, text) in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(Settings, name),
                            help=f"{text} ({lowest:g} to {highest:g}; default: {getattr(Settings, name)})")
    parser.add_argument("--allow-host", action="append", default=[],
                        help="A Host name to answer besides IP addresses and localhost (behind a proxy: its public "
                             "name; '*': any). Repeatable.")
    parser.add_argument("--in-process", action="store_true",
                        help="Decode in threads of the server's own process: less memory and a faster start.")
    parser.add_argument("--threads", type=int, help="Compute threads per decoder (default: the cores shared among "
                                                    "the decoders).")
    parser.add_argument("--api-key-file", help="Require 'Authorization: Bearer KEY' on /v1/* and /metrics, KEY read "
                                               "from this file.")
    args = parser.parse_args(argv)
    bounds = {"port": (1, 65535), "threads": (1, 1024), **{n: (lo, hi) for n, (_, lo, hi, _) in OPTIONS.items()}}
    for name, (lowest, highest) in bounds.items():
        value = getattr(args, name)
        if value is not None and not lowest <= value <= highest:
            raise Unservable(f"--{name.replace('_', '-')}: must be >= {lowest:g} and <= {highest:g}, got {value:g}")
    return args


def api_key(path: str | None) -> str | None:
    """The key in --api-key-file: a regular file of at most 4 KiB, not empty."""
    import stat

    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise Unservable(f"--api-key-file {path}: not a regular file")
            key = f.read(4097).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise Unservable(f"--api-key-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") \
            from None
    if not key or len(key) > 4096:
        raise Unservable(f"--api-key-file {path}: the file is {'empty' if not key else 'over 4 KiB'}")
    return key


def main(argv=None) -> int:
    try:
        args = arguments(argv)
        settings = Settings(**{name: getattr(args, name) for name in OPTIONS}, processes=not args.in_process,
                            threads=args.threads, api_key=api_key(args.api_key_file),
                            allow_hosts=tuple(h.strip().lower() for h in args.allow_host))
        for needed in ("fastapi", "uvicorn", "httptools"):
            try:
                __import__(needed)
            except ImportError:
                raise Unservable(f"serving needs {needed}: pip install -r {HERE / 'requirements-serve.txt'}") \
                    from None
        from server.app import create_app, run
        from server.workers import Local, start

        served = Exported(HERE)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = args.threads or max(1, cores // settings.workers)
        if settings.processes:
            decoders = start("serve:load", (str(HERE), threads), settings.workers, "decoder")
        else:
            decoders = [Local(load(str(HERE), args.threads or cores))] * settings.workers
        app = create_app(served, settings, decoders, f"{served.task} (exported by seqcli)",
                         served.config["seqcli_version"])
        print(f"serving {HERE.name} ({served.task}) on http://{args.host}:{args.port}/ (API: /docs)",
              file=sys.stderr, flush=True)
        run(app, args.host, args.port, settings)
    except (Unservable, Invalid, runner.Failure, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
