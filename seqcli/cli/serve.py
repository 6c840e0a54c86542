from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, guard
from seqcli.server.app import OPTIONS, Settings


def bound(name: str):
    """The option of one of the server's bounds, as `seqcli.server.app.OPTIONS` declares it."""
    kind, lowest, highest, text = OPTIONS[name]
    return typer.Option(getattr(Settings, name), "--" + name.replace("_", "-"), min=lowest, max=highest, help=text)


@guard
def serve(
    runs: List[str] = typer.Argument(..., help="A run directory or a checkpoint file (several: one ensemble, the mean of their probabilities)."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on (another than 127.0.0.1 exposes the model)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="The port."),
    max_batch: int = bound("max_batch"),
    batch_wait_ms: float = bound("batch_wait_ms"),
    max_queue: int = bound("max_queue"),
    max_inputs: int = bound("max_inputs"),
    max_chars: int = bound("max_chars"),
    max_tokens: int = bound("max_tokens"),
    workers: int = bound("workers"),
    max_work: int = bound("max_work"),
    max_connections: int = bound("max_connections"),
    header_timeout: float = bound("header_timeout"),
    request_timeout: float = bound("request_timeout"),
    grace: float = bound("grace"),
    allow_host: List[str] = typer.Option([], "--allow-host", help="A Host name to answer besides IP addresses and localhost (behind a proxy: its public name; '*': any). Repeatable."),
    in_process: bool = typer.Option(False, "--in-process", help="Decode in threads of the server's own process: less memory and a faster start, but the decoders share the GIL with the server."),
    threads: Optional[int] = THREADS,
    api_key_file: Optional[str] = typer.Option(None, "--api-key-file", help="Require 'Authorization: Bearer KEY' on /v1/* and /metrics, KEY read from this file."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
):
    """Serve a trained model over HTTP, with a page to try it (pip install 'seqcli[serve]').

    POST /v1/predict (inputs and the task's options), POST /v1/generate (language models;
    "stream": true sends tokens as server-sent events), GET /v1/model, GET /health,
    GET /metrics (Prometheus), GET / (the page), /docs (the OpenAPI document). Requests are
    batched; SIGTERM or Ctrl-C lets the requests in flight finish. Several runs of one task
    and data (seqcli serve RUN1 RUN2 ...) are served as one ensemble, as seqcli sample does.
    """
    from seqcli import serve as serving
    from seqcli.errors import SeqcliError
    from seqcli.train import checkpoint as ckpt_io

    serving.require_fastapi()
    key = None
    if api_key_file is not None:
        from seqcli.files import read_regular

        try:
            key = read_regular(api_key_file, 4096).decode("utf-8").strip()
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise SeqcliError(f"--api-key-file {api_key_file}: cannot read it ({getattr(exc, 'strerror', None) or exc})") \
                from None
        if not key:
            raise SeqcliError(f"--api-key-file {api_key_file}: the file is empty")
    for run in runs:
        ckpt_io.find(run, which)  # a missing run is one line before anything starts
    settings = serving.Settings(max_batch=max_batch, batch_wait_ms=batch_wait_ms, max_queue=max_queue,
                                max_inputs=max_inputs, max_chars=max_chars, max_tokens=max_tokens, api_key=key,
                                workers=workers, processes=not in_process, max_work=max_work,
                                max_connections=max_connections, header_timeout=header_timeout,
                                request_timeout=request_timeout, grace=grace,
                                allow_hosts=tuple(h.strip().lower() for h in allow_host))
    serving.serve(runs, host, port, settings, threads, which, device, log=lambda text: typer.echo(text, err=True))
