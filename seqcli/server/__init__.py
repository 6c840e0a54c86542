"""The HTTP server without the model: routes, request checks, bounds against slow and hostile
clients, dynamic batching, decoder processes, Prometheus metrics and the page.

It imports nothing from seqcli (the standard library, FastAPI and uvicorn alone): `seqcli
serve` runs it on a seqcli model (`seqcli.serve`), and `seqcli export` copies this package
into every export folder, where `python serve.py` runs it on run.py's model, without torch.

    app.py       the routes, the request checks, `Settings` (the bounds) and `Served` (what a
                 model offers the server)
    batcher.py   requests queued and decoded together, off the event loop
    workers.py   the decoders: worker processes (or threads) each holding a decoding
    http.py      uvicorn's protocol with bounds on request heads, bodies, time and connections
    metrics.py   GET /metrics
    static/      the page at GET /
"""
