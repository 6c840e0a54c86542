"""`seqcli serve` against hostile or careless clients, with the real server on 127.0.0.1:
slow heads, huge headers, more connections than it keeps, requests that ask for too much
work, cross-site and rebinding requests, clients that vanish, a SIGTERM while a client stops
reading; then a fuzzer of random bodies, headers, timings and disconnects. Each answer is one
JSON line (never a 500), /health keeps answering, and the log holds no traceback."""

import json
import random
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_serve import HOST, Server, runs  # noqa: E402,F401

QUIET = ("Traceback", "never retrieved", "ClientDisconnect", "Exception", "Error")


def connect(server) -> socket.socket:
    return socket.create_connection((HOST, server.port), timeout=10)


def raw(server, data: bytes, timeout=10) -> bytes:
    """What the server answers to `data` sent on a connection of its own, once it closes it
    or a whole answer has come."""
    with connect(server) as s:
        s.settimeout(timeout)
        s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
            head, _, body = got.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
            if length and len(body) >= length[0]:
                break
        return got


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def post(body: dict, path="/v1/predict", headers="", host="127.0.0.1") -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def healthy(server) -> bool:
    return status_of(raw(server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 200


def stopped_quietly(server) -> str:
    """SIGTERM; the server's log, which must hold no traceback or warning."""
    assert server.stop() == 0
    log = server.proc.stderr.read()
    assert not any(word in log for word in QUIET), log
    return log


@pytest.fixture(scope="module")
def reverse(runs):  # noqa: F811
    server = Server(runs / "reverse", "--header-timeout", "1.5", "--request-timeout", "3", "--max-connections", "40",
                    "--max-work", "20000", "--allow-host", "seqcli.example")
    yield server
    stopped_quietly(server)


def test_a_slow_head_is_answered_408_and_health_goes_on(reverse):
    started = time.time()
    with connect(reverse) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")
        got = b""
        s.settimeout(0.3)
        while time.time() - started < 10 and not got:
            try:
                s.sendall(b"X-Slow: 1\r\n")  # a header line now and then: never the head's end
                got = s.recv(1000)
            except socket.timeout:
                continue
            except OSError:
                break
    assert status_of(got) == 408 and b"did not arrive within 1.5 s" in got
    assert time.time() - started < 4
    assert healthy(reverse)


def test_a_slow_body_is_cut_off(reverse):
    started = time.time()
    with connect(reverse) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"inputs\"")
        s.settimeout(10)
        try:
            while s.recv(1000):
                pass
        except OSError:
            pass
    assert 2.5 < time.time() - started < 6
    assert healthy(reverse)


def test_a_huge_header_is_431_without_reading_it_whole(reverse):
    with connect(reverse) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        try:
            for _ in range(3200):  # 200 MB, if the server read it all
                s.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        s.settimeout(5)
        answer = s.recv(1000)
    assert sent < 50 << 20
    assert status_of(answer) == 431 and b"over 65,536 bytes" in answer
    assert status_of(raw(reverse, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 9000 + b"\r\n")) == 431


def test_connections_over_the_limit_close_the_idle_ones_and_health_answers(reverse):
    idle = [connect(reverse) for _ in range(120)]  # the limit is 40
    try:
        assert healthy(reverse)
        evicted = 0
        for s in idle:
            s.settimeout(0.05)
            try:
                evicted += status_of(s.recv(1000)) == 503
            except socket.timeout:
                continue
        assert evicted >= 80
    finally:
        for s in idle:
            s.close()


def test_a_request_that_asks_for_too_much_work_is_413(reverse):
    answer = raw(reverse, post({"inputs": ["abcde"] * 256, "beam_size": 1000}))
    assert status_of(answer) == 413
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["error"].startswith("the request asks for") and "--max-work" in body["error"]
    assert status_of(raw(reverse, post({"inputs": ["abcde"], "beam_size": 4}))) == 200


def test_requests_a_web_page_could_make_are_refused(reverse):
    rebinding = raw(reverse, b"GET /v1/model HTTP/1.1\r\nHost: attacker.example:8000\r\n\r\n")
    assert status_of(rebinding) == 400 and b"is not this server's" in rebinding
    assert status_of(raw(reverse, b"GET /health HTTP/1.1\r\nHost: seqcli.example\r\n\r\n")) == 200  # --allow-host
    assert status_of(raw(reverse, b"GET /health HTTP/1.1\r\nHost: localhost:80\r\n\r\n")) == 200
    assert status_of(raw(reverse, b"GET /health HTTP/1.1\r\nHost: [::1]:80\r\n\r\n")) == 200
    cross = raw(reverse, post({"inputs": ["abc"]}, headers="Origin: http://attacker.example\r\n"))
    assert status_of(cross) == 403 and b"cross-site" in cross
    same = raw(reverse, post({"inputs": ["abc"]}, headers=f"Origin: http://127.0.0.1:{reverse.port}\r\n",
                          host=f"127.0.0.1:{reverse.port}"))
    assert status_of(same) == 200
    data = json.dumps({"inputs": ["abc"]}).encode()
    simple = raw(reverse, b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    assert status_of(simple) == 415 and b"must be application/json" in simple


def test_every_server_field_is_type_checked(runs):  # noqa: F811
    server = Server(runs / "char-lm")
    try:
        answer = raw(server, post({"prime": "a", "length": 5, "stream": "yes"}, "/v1/generate"))
        assert status_of(answer) == 422 and b"stream: must be true or false" in answer
        answer = raw(server, post({"num_samples": 10_000, "length": 2_000}, "/v1/generate"))
        assert status_of(answer) == 413
    finally:
        stopped_quietly(server)


def test_vanishing_clients_and_a_stuck_reader_leave_no_traceback_and_sigterm_is_bounded(runs):  # noqa: F811
    server = Server(runs / "char-lm", "--grace", "2")
    gone = []
    for i in range(8):
        s = connect(server)
        body = post({"prime": "a", "length": 1500, "stream": i % 2 == 0}, "/v1/generate")
        s.sendall(body if i % 4 < 2 else body[:-5])  # some never finish their body
        if i % 2 == 0 and i % 4 < 2:
            s.recv(200)  # a stream under way
        gone.append(s)
    time.sleep(0.5)
    for s in gone:
        s.close()
    stuck = connect(server)  # a client that asks for a long stream and stops reading
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(post({"prime": "a", "length": 2000, "num_samples": 64, "stream": True}, "/v1/generate"))
    stuck.recv(100)
    time.sleep(1.0)
    started = time.time()
    stopped_quietly(server)
    assert time.time() - started < 2 + 15
    stuck.close()


def test_fuzzed_requests_and_connections(runs):  # noqa: F811
    """Random bodies, headers, timings and disconnects: every answer is a status the server
    documents with one JSON line, never a 500; the server stays healthy and quiet."""
    server = Server(runs / "reverse", "--header-timeout", "1", "--request-timeout", "2", "--max-work", "20000")
    rng = random.Random(7)
    values = [None, True, False, 0, -1, 1, 3, 2**64, 1e308, float("nan"), "", "abc", "yes", [], ["abc"], {},
              {"a": 1}, [1, 2], "\u0000", "a" * 3000, ["a" * 20] * 300]
    keys = ["inputs", "beam_size", "n_best", "max_length", "temperature", "top_k", "length_penalty",
            "coverage_penalty", "stream", "pictures", "seed", "num_samples", "length", "prime", "bogus"]
    statuses = {}
    cases = 400
    try:
        for case in range(cases):
            kind = rng.random()
            body = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 5))}
            if rng.random() < 0.6:
                body["inputs"] = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 12)))
                                  for _ in range(rng.randint(1, 5))]
            data = json.dumps(body, allow_nan=True).encode()
            if kind < 0.1:
                data = data[:rng.randint(0, len(data))]  # malformed
            headers = {"Host": rng.choice(["127.0.0.1", "localhost", "evil.example", "127.0.0.1:1"]),
                       "Content-Type": rng.choice(["application/json", "application/json; charset=utf-8",
                                                   "text/plain", "application/x-www-form-urlencoded"])}
            if rng.random() < 0.2:
                headers["Origin"] = rng.choice(["null", "http://evil.example", f"http://127.0.0.1:{server.port}"])
            if rng.random() < 0.1:
                headers[f"X-{case}"] = "v" * rng.choice([10, 70_000])
            path = rng.choice(["/v1/predict"] * 6 + ["/v1/generate", "/v1/model", "/health", "/nowhere", "/metrics"])
            method = "GET" if path in ("/v1/model", "/health", "/metrics") else rng.choice(["POST"] * 5 + ["PUT"])
            length = len(data) + (rng.choice([0, 0, 0, 10, -1]) if kind >= 0.1 else 0)
            head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + \
                   f"Content-Length: {max(0, length)}\r\n\r\n"
            message = head.encode() + data
            if rng.random() < 0.1:  # a client that goes away mid-request
                with connect(server) as s:
                    s.sendall(message[:rng.randint(1, len(message))])
                statuses["gone"] = statuses.get("gone", 0) + 1
                continue
            answer = raw(server, message, timeout=15)
            status = status_of(answer)
            statuses[status] = statuses.get(status, 0) + 1
            assert status in (200, 400, 401, 403, 404, 405, 408, 413, 415, 422, 431, 503), (message[:300], answer)
            if status != 200 and answer.partition(b"\r\n\r\n")[2]:
                text = answer.partition(b"\r\n\r\n")[2]
                assert b"\n" not in text.strip() and "error" in json.loads(text) or b"detail" in text, answer
        assert healthy(server)
    finally:
        stopped_quietly(server)
    print(f"fuzzer: {cases} cases, statuses {dict(sorted(statuses.items(), key=str))}")
    assert statuses.get(200, 0) > 20 and statuses.get(422, 0) > 20
