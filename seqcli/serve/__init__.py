"""`seqcli serve`: a trained model behind HTTP (FastAPI and uvicorn; `pip install 'seqcli[serve]'`).

The server itself (routes, request checks, bounds, batching, metrics, the page) is
`seqcli.server`, which an export folder's serve.py runs too. This module serves a seqcli
model with it: requests go through the one inference path `seqcli sample` takes: their
options are the task's `sample` keyword arguments, checked against its signature, with the
recipe's `sample:` values as defaults (`seqcli.inference.sample_options`), and decoded by the
task's own `sample` (several requests at once through `Task.sample_batch`).
"""

from __future__ import annotations

from seqcli.api import INPUTS
from seqcli.errors import SeqcliError
from seqcli.server.app import Served, Settings  # noqa: F401 - the server's bounds, as `seqcli serve` takes them
from seqcli.server.errors import Invalid


def require_fastapi():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SeqcliError("seqcli serve needs FastAPI and uvicorn: pip install 'seqcli[serve]'") from None


class Checkpointed(Served):
    """A seqcli model (one checkpoint, or an ensemble) as the server serves it."""

    def __init__(self, loaded, run: str):
        from seqcli import inference

        self.loaded, self.run = loaded, run
        self.task_object, self.recipe = loaded.task, loaded.recipe
        self.task, self.description = self.recipe.task.name, self.recipe.description
        self.sample_params = inference.sample_parameters(type(self.task_object))
        self.params = list(self.sample_params)
        self.pictures = list(inference.outputs(self.sample_params))
        self.takes_inputs = INPUTS in self.sample_params
        self.varying = INPUTS if self.takes_inputs else self.task_object.batched_option
        self.streams = hasattr(self.task_object, "stream")

    def options(self, given: dict, pictures: list[str]) -> dict:
        from seqcli import inference
        from seqcli.errors import ConfigError

        try:
            return inference.sample_options(self.task_object, self.recipe,
                                            {**given, **{p: "picture.png" for p in pictures}})
        except ConfigError as exc:
            raise Invalid(f"{exc.key}: {exc.message}", exc.key) from None
        except SeqcliError as exc:
            raise Invalid(str(exc)) from None

    def schemas(self) -> dict:
        from seqcli.schema import options_schema

        return options_schema(self.sample_params, self.recipe.sample, skip=self.pictures)

    def describe(self) -> dict:
        import inspect

        import torch

        from seqcli import __version__, inference

        ckpt = self.loaded.checkpoint
        return {
            "doc": inspect.getdoc(self.task_object.sample) or "",
            INPUTS: inference.input_form(self.loaded.fields, self.takes_inputs),
            "checkpoint": {"path": ckpt.path, "step": ckpt.step, "epoch": ckpt.epoch,
                           "best": ckpt.best.to_state() if ckpt.best else None},
            "metrics": inference.checkpoint_metrics(ckpt, self.run),
            **({"ensemble": [{"path": m.path, "step": m.step, "metrics": inference.checkpoint_metrics(m)}
                             for m in self.loaded.members]} if self.loaded.members else {}),
            "versions": {"seqcli": __version__, "trained_with": ckpt.seqcli_version, "torch": torch.__version__,
                         "plugins": {k: {"name": r.name, "package": r.package, "version": r.version}
                                     for k, r in ckpt.plugins.items()}},
        }


def _runs(run) -> list[str]:
    """One run (a run directory or a checkpoint file) or several (an ensemble), as a list."""
    return [str(r) for r in run] if isinstance(run, (list, tuple)) else [str(run)]


def decoders(runs: list[str], loaded, settings: Settings, which: str, device: str) -> list:
    """`settings.workers` decoders: worker processes, each loading the model (in parallel,
    before the server answers anything), or the server's own model for every thread."""
    from seqcli.serve.decoding import Decoding
    from seqcli.server.workers import Local, start
    from seqcli.train.threads import default_threads

    if not settings.processes:
        return [Local(Decoding(loaded))] * settings.workers
    threads = settings.threads or max(1, default_threads() // settings.workers)
    return start("seqcli.serve.decoding:load", (runs, which, device, threads), settings.workers, "seqcli-decoder")


def create_app(run, settings: Settings, which: str = "best", device: str = "cpu"):
    """The FastAPI application serving `run` (a run directory or a checkpoint file; a list of
    them: one ensemble)."""
    require_fastapi()
    from seqcli import __version__, inference
    from seqcli.server.app import create_app as serving_app
    from seqcli.server.errors import Unservable

    runs = _runs(run)
    loaded = inference.load(runs, which, device)
    try:
        workers = decoders(runs, loaded, settings, which, device)
    except Unservable as exc:
        raise SeqcliError(str(exc)) from None
    served = Checkpointed(loaded, runs[0])
    return serving_app(served, settings, workers, f"seqcli: {served.task}", __version__)


def serve(run, host: str, port: int, settings: Settings, threads: int | None, which: str = "best",
          device: str = "cpu", log=print) -> None:
    """Run the server until SIGTERM or Ctrl-C, which let in-flight requests finish."""
    from seqcli.server.app import run as run_server
    from seqcli.server.errors import Unservable
    from seqcli.train.threads import default_threads, use_threads

    # decoders at once share the cores: each batch's small matrix products use one or two
    # threads well, and two decoders keep both cores of a small host busy
    settings.threads = threads
    use_threads(1 if settings.processes else threads or max(1, default_threads() // settings.workers))
    app = create_app(run, settings, which, device)
    runs = _runs(run)
    what = runs[0] if len(runs) == 1 else f"an ensemble of {len(runs)} ({', '.join(runs)})"
    log(f"serving {what} ({app.state.service.model.task}) on http://{host}:{port}/ (API: /docs)")
    try:
        run_server(app, host, port, settings)
    except Unservable as exc:
        raise SeqcliError(str(exc)) from None
