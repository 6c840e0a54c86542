"""`seqcli serve` under load, the real server on 127.0.0.1: 64 clients at once send
thousands of requests of mixed options to a seq2seq model while others open streams on a
language model and go away in the middle; then every answer is the bulk command's, every
decoder is alive, nothing was restarted, and memory stayed within a bound. Bounded: a fixed
number of requests, a timeout on each, a deadline on the whole."""

import json
import http.client
import random
import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from seqcli.cli import app  # noqa: E402
from test_batch_invariance import same  # noqa: E402
from test_serve import HOST, Server, runs, words  # noqa: E402,F401 - runs: the trained models, a fixture

CLIENTS, STREAMERS, REQUESTS, DEADLINE = 64, 8, 3000, 240.0
OPTIONS = [{"beam_size": 1}, {"beam_size": 3, "n_best": 2}, {"beam_size": 2, "max_length": 4},
           {"beam_size": 3, "length_penalty": 0.6}]


def tree_rss_mb(pid: int) -> float:
    """The resident memory of a process and its children (the decoder processes)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
        todo += [int(c) for c in children]
    return total / 1024


def metric(server, name: str) -> float:
    return float(next(line.split()[-1] for line in server.get("/metrics")[1].splitlines() if line.startswith(name)))


def test_64_clients_mixed_options_and_gone_streams_lose_nothing(runs, tmp_path):
    reverse, lm = Server(runs / "reverse", "--max-queue", "1024"), Server(runs / "char-lm")
    try:
        rng = random.Random(0)
        vocabulary = words(400, seed=7)
        requests = [(rng.randrange(len(OPTIONS)), [rng.choice(vocabulary) for _ in range(rng.randint(1, 4))])
                    for _ in range(REQUESTS)]
        warm = [reverse.post("/v1/predict", {"inputs": inputs, **OPTIONS[k]})[0] for k, inputs in requests[:100]]
        assert set(warm) == {200}
        before = tree_rss_mb(reverse.proc.pid)
        answers: dict[int, list[str]] = {}
        failures, lock, stop_at = [], threading.Lock(), time.time() + DEADLINE
        todo = list(range(REQUESTS))
        streams = {"opened": 0, "left": 0}

        def client() -> None:
            connection = http.client.HTTPConnection(HOST, reverse.port, timeout=60)
            while time.time() < stop_at:
                with lock:
                    if not todo:
                        return
                    n = todo.pop()
                k, inputs = requests[n]
                try:
                    connection.request("POST", "/v1/predict", json.dumps({"inputs": inputs, **OPTIONS[k]}),
                                       {"Content-Type": "application/json"})
                    answer = connection.getresponse()
                    body = answer.read()
                except OSError as exc:
                    with lock:
                        failures.append(f"request {n}: {exc!r}")
                    connection = http.client.HTTPConnection(HOST, reverse.port, timeout=60)
                    continue
                with lock:
                    if answer.status != 200:
                        failures.append(f"request {n}: {answer.status} {body[:200]!r}")
                    else:
                        answers[n] = json.loads(body)["outputs"]

        def streamer(seed: int) -> None:
            rng = random.Random(seed)
            while time.time() < stop_at:
                with lock:
                    if not todo:
                        return
                connection = http.client.HTTPConnection(HOST, lm.port, timeout=60)
                connection.request("POST", "/v1/generate", json.dumps(
                    {"prime": rng.choice(["The ", "a", "It was"]), "length": 2000, "temperature": 1.0,
                     "stream": True}), {"Content-Type": "application/json"})
                response = connection.getresponse()
                if response.status != 200:
                    with lock:
                        failures.append(f"stream: {response.status}")
                    return
                response.read(rng.randint(50, 2000))  # a few tokens, then the client goes away
                with lock:
                    streams["opened"] += 1
                connection.sock.shutdown(socket.SHUT_RDWR)
                connection.close()
                with lock:
                    streams["left"] += 1

        threads = [threading.Thread(target=client) for _ in range(CLIENTS - STREAMERS)]
        threads += [threading.Thread(target=streamer, args=(i,)) for i in range(STREAMERS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        assert not failures, failures[:5]
        assert len(answers) == REQUESTS, f"{len(answers)} of {REQUESTS} answered in {elapsed:.0f} s"
        assert streams["left"] >= STREAMERS

        # every answer is the bulk command's for the same inputs and options
        for k, options in enumerate(OPTIONS):
            mine = [n for n in range(REQUESTS) if requests[n][0] == k]
            inputs = tmp_path / f"inputs-{k}.txt"
            inputs.write_text("".join(text + "\n" for n in mine for text in requests[n][1]))
            flags = [a for key, value in options.items() for a in (f"--{key.replace('_', '-')}", str(value))]
            bulk = CliRunner().invoke(app, ["sample", str(runs / "reverse"), "--input-file", str(inputs), "-o",
                                            str(tmp_path / f"bulk-{k}.txt"), *flags])
            assert bulk.exit_code == 0, bulk.output
            expected = (tmp_path / f"bulk-{k}.txt").read_text()
            outputs = [o for n in mine for o in answers[n]]
            if options.get("n_best", 1) > 1:  # blocks of n lines, each ended by a blank line
                blocks = [b + "\n" for b in expected.split("\n\n") if b.strip()]
                same("reverse", outputs, blocks)
            else:
                same("reverse", outputs, expected.splitlines())

        # every decoder alive, none restarted; the streams stopped when their clients left
        for server in (reverse, lm):
            status, text, _ = server.get("/health")
            health = json.loads(text)
            assert status == 200 and health["decoders"] == {"running": 2, "of": 2, "restarts": 0}, health
            assert metric(server, "seqcli_decoders ") == 2 and metric(server, "seqcli_decoder_restarts_total") == 0
        drawn = metric(lm, "seqcli_tokens_generated_total")
        time.sleep(1.0)
        assert metric(lm, "seqcli_tokens_generated_total") == drawn < 2000 * streams["opened"]
        assert lm.post("/v1/generate", {"prime": "a", "length": 5})[0] == 200
        after = tree_rss_mb(reverse.proc.pid)
        assert after < before + 100, (before, after)
        print(f"{REQUESTS} requests from {CLIENTS - STREAMERS} clients in {elapsed:.1f} s "
              f"({REQUESTS / elapsed:.0f} req/s), {streams['left']} streams left mid-way; memory {before:.0f} -> "
              f"{after:.0f} MB")
    finally:
        assert reverse.stop() == 0
        assert lm.stop() == 0


def test_a_killed_decoder_process_is_started_again_and_nothing_is_lost(runs):
    import os
    import signal

    server = Server(runs / "reverse")
    try:
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
        workers = [int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
                   and "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        answers = [server.post("/v1/predict", {"inputs": [w], "beam_size": 1}) for w in words(40, seed=5)]
        assert all(status in (200, 503) for status, _ in answers)
        assert sum(status == 200 for status, _ in answers) >= 39  # at most the group it held hears of it
        status, text, _ = server.get("/health")
        health = json.loads(text)
        assert status == 200 and health["decoders"]["running"] == 2 and health["decoders"]["restarts"] == 1, health
        assert metric(server, "seqcli_decoder_restarts_total") == 1
    finally:
        assert server.stop() == 0
