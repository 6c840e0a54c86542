from __future__ import annotations

from typing import List, Optional

import typer

from seqcli.cli.common import THREADS, guard


@guard
def serve(
    runs: List[str] = typer.Argument(..., help="A run directory or a checkpoint file (several: one ensemble, the mean of their probabilities)."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on (another than 127.0.0.1 exposes the model)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="The port."),
    max_batch: int = typer.Option(64, "--max-batch", min=1, max=4096, help="Inputs decoded together at most."),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", min=0, max=10_000, help="How long a request waits for others to share its batch."),
    max_queue: int = typer.Option(256, "--max-queue", min=1, max=100_000, help="Requests waiting at most; more are answered 503."),
    max_inputs: int = typer.Option(256, "--max-inputs", min=1, max=100_000, help="Inputs in one request at most."),
    max_chars: int = typer.Option(10_000, "--max-chars", min=1, max=10_000_000, help="Characters in one input at most."),
    max_tokens: int = typer.Option(2_000, "--max-tokens", min=1, max=1_000_000, help="The largest length or max_length a request may ask for."),
    workers: int = typer.Option(2, "--workers", min=1, max=64, help="Batches decoded at once, each by a decoder process of its own."),
    max_work: int = typer.Option(200_000, "--max-work", min=1, max=10**12, help="A request's decoding work at most: inputs x beam_size x num_samples x (characters + max_length or length); more is answered 413."),
    max_connections: int = typer.Option(1000, "--max-connections", min=1, max=1_000_000, help="Connections open at once; one more closes the one idle longest."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1, max=3600, help="Seconds for a request's line and headers to arrive (else 408)."),
    request_timeout: float = typer.Option(60.0, "--request-timeout", min=0.1, max=86_400, help="Seconds for a whole request, body included, to arrive."),
    grace: float = typer.Option(30.0, "--grace", min=0, max=86_400, help="Seconds SIGTERM waits for requests in flight before cancelling them."),
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
