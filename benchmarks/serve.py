"""`seqcli serve` under load, on loopback only: K concurrent clients against the same requests
one at a time, for a `reverse` seq2seq, the real-size seq2seq of benchmarks/realsize.py (1.9M
parameters, 100,000 pairs) and a character language model; each seq2seq against `seqcli
sample --input-file` on the same inputs; the server's memory over many requests.

Every run is bounded: a fixed number of requests, each with a timeout, and a deadline for the
whole benchmark. The server and the clients share the machine's cores (the server uses
--threads, default 2), as they would on a small host.

    python benchmarks/serve.py [--requests 2000] [--clients 32] [--memory-requests 10000] [--no-real-size]
                               [--in-process]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402

HOST = "127.0.0.1"
DEADLINE = 1800.0  # seconds: the whole benchmark stops here, whatever it was doing


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """`seqcli serve RUN` (or `command`, another server's command line) on loopback; `started`:
    the seconds from its launch to its first healthy answer."""

    def __init__(self, run: Path | None, *options: str, command: list | None = None):
        self.port = free_port()
        launched = time.perf_counter()
        command = command or [sys.executable, "-m", "seqcli", "serve", str(run)]
        self.proc = subprocess.Popen([*map(str, command), "--host", HOST, "--port", str(self.port), *options],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while True:
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    self.started = time.perf_counter() - launched
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)

    def rss_mb(self, pid: int | None = None) -> float:
        text = Path(f"/proc/{pid or self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024

    def child_rss_mb(self) -> list[float]:
        """Each decoder process's memory."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.rss_mb(int(c)) for c in children]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def load(port: int, path: str, bodies: list[dict], clients: int, stop_at: float) -> dict:
    """Send `bodies` from `clients` threads, each on its own keep-alive connection; latency of
    every request, errors counted."""
    latencies, errors, lock = [], [0], threading.Lock()
    queue = list(enumerate(bodies))

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        while time.time() < stop_at:
            with lock:
                if not queue:
                    return
                _, body = queue.pop()
            started = time.perf_counter()
            try:
                connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection(HOST, port, timeout=120)
            with lock:
                latencies.append(time.perf_counter() - started)
                errors[0] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rate": len(latencies) / elapsed, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], "errors": errors[0],
            "done": len(latencies)}


def train(recipe: str, root: Path, *overrides: str) -> Path:
    run = root / recipe
    subprocess.run([sys.executable, "-m", "seqcli", "run", recipe, *overrides, "--run-dir", str(run)], check=True,
                   capture_output=True)
    return run


def show(what: str, result: dict) -> None:
    print(f"{what:<42} {result['rate']:>9,.1f} req/s  p50 {result['p50'] * 1000:>7.1f} ms  "
          f"p99 {result['p99'] * 1000:>7.1f} ms  errors {result['errors']}", flush=True)


def bulk_rate(run: Path, words: list[str], root: Path, threads: int) -> float:
    inputs = root / "inputs.txt"
    inputs.write_text("\n".join(words) + "\n")
    bulk = subprocess.run([sys.executable, "-m", "seqcli", "sample", str(run), "--input-file", str(inputs), "-o",
                           str(root / "out.txt"), "--force", "--beam-size", "1", "--threads", str(threads)],
                          capture_output=True, text=True, check=True)
    return float(re.search(r"\(([\d,.]+) inputs/s\)", bulk.stderr).group(1).replace(",", ""))


def seq2seq(name: str, run: Path, words: list[str], args, stop_at: float, root: Path, *options: str,
            memory: bool = False) -> None:
    """One at a time, `--clients` clients with one input a request and with 16, against the
    bulk command on the same inputs (the best of --repeats for each)."""
    bodies = [{"inputs": [w], "beam_size": 1} for w in words]
    packed = [{"inputs": words[i : i + 16], "beam_size": 1} for i in range(0, len(words), 16)]
    server = Server(run, *options)
    try:
        alone = max((load(server.port, "/v1/predict", bodies[: len(bodies) // 8], 1, stop_at)
                     for _ in range(args.repeats)), key=lambda r: r["rate"])
        show(f"{name}, one request at a time", alone)
        together = max((load(server.port, "/v1/predict", bodies, args.clients, stop_at) for _ in range(args.repeats)),
                       key=lambda r: r["rate"])
        show(f"{name}, {args.clients} clients", together)
        sixteen = max((load(server.port, "/v1/predict", packed, args.clients, stop_at) for _ in range(args.repeats)),
                      key=lambda r: r["rate"])
        show(f"{name}, {args.clients} clients, 16 inputs a request", sixteen)
        rss = server.rss_mb() + sum(server.child_rss_mb())
        if memory:
            rng = random.Random(1)
            before = rss
            many = [{"inputs": [rng.choice(words)], "beam_size": 1} for _ in range(args.memory_requests)]
            done = load(server.port, "/v1/predict", many, args.clients, stop_at)
            after = server.rss_mb() + sum(server.child_rss_mb())
            print(f"memory over {done['done']:,} more requests: {before:.0f} MB -> {after:.0f} MB "
                  f"(errors {done['errors']})", flush=True)
            record("serve", f"{name}: memory over {done['done']:,} requests", after, before, "MB", "flat")
    finally:
        server.stop()
    bulk = max(bulk_rate(run, words, root, args.threads) for _ in range(args.repeats))
    print(f"{name + ', seqcli sample --input-file':<42} {bulk:>9,.1f} inputs/s  (the server's memory: {rss:,.0f} MB)",
          flush=True)
    ratio = together["rate"] / alone["rate"]
    print(f"  {args.clients} clients / one at a time: {ratio:.2f} (goal >= 5); / bulk: "
          f"{together['rate'] / bulk:.2f} (goal >= 0.7); 16 inputs a request / bulk: {sixteen['rate'] * 16 / bulk:.2f}",
          flush=True)
    record("serve", f"{name}: {args.clients} clients vs one at a time (req/s)", together["rate"], alone["rate"],
           "req/s", ">= 5")
    record("serve", f"{name}: {args.clients} clients vs seqcli sample --input-file", together["rate"], bulk,
           "inputs/s", ">= 0.7")
    record("serve", f"{name}: {args.clients} clients, 16 inputs a request, vs seqcli sample --input-file",
           sixteen["rate"] * 16, bulk, "inputs/s", ">= 0.7")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--lm-requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="each rate is the best of this many runs")
    parser.add_argument("--threads", type=int, default=2, help="the bulk command's; the server shares the cores "
                                                                  "among its decoders (seqcli serve's default)")
    parser.add_argument("--real-size", action=argparse.BooleanOptionalAction, default=True,
                        help="also the real-size seq2seq (benchmarks/realsize.py; trained once, then cached)")
    parser.add_argument("--in-process", action="store_true", help="also serve with --in-process (decoder threads)")
    args = parser.parse_args()
    stop_at = time.time() + DEADLINE
    rng = random.Random(0)
    print(f"seqcli serve's defaults (2 decoder processes, a thread each); {args.clients} concurrent clients; "
          f"loopback; the bulk command with {args.threads} threads", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reverse = train("reverse", root, "train.max_steps=200", "train.eval_every=200")
        lm = train("char-lm", root, "train.max_steps=50", "train.eval_every=50")
        words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(4, 10))) for _ in range(args.requests)]
        seq2seq("reverse", reverse, words, args, stop_at, root, memory=True)
        if args.real_size:
            import realsize

            run = realsize.path("seq2seq")
            tests = realsize.test_inputs(run)
            real = [rng.choice(tests) for _ in range(args.requests)]
            seq2seq("real-size seq2seq (1.9M)", run, real, args, stop_at, root)
            if args.in_process:
                seq2seq("real-size seq2seq, --in-process", run, real, args, stop_at, root, "--in-process")

        server = Server(lm)
        try:
            primes = [{"prime": "".join(rng.choice("abcdefgh ") for _ in range(4)), "length": 100,
                       "temperature": 0.8} for _ in range(args.lm_requests)]
            alone = load(server.port, "/v1/generate", primes[: args.lm_requests // 4], 1, stop_at)
            show("char LM (100 tokens), one at a time", alone)
            together = load(server.port, "/v1/generate", primes, args.clients, stop_at)
            show(f"char LM (100 tokens), {args.clients} clients", together)
        finally:
            server.stop()
        record("serve", f"char LM: {args.clients} clients vs one at a time (req/s)", together["rate"], alone["rate"],
               "req/s", ">= 5")


if __name__ == "__main__":
    main()
