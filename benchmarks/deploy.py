"""An export folder's own server (`python serve.py`: FastAPI, uvicorn, numpy, onnxruntime; no
torch) against `seqcli serve`, on the real-size models of benchmarks/realsize.py: the
installed size of each, their start-up, and under load (32 clients against one at a time,
and against the runner's bulk throughput on the same inputs, `Model.predict_stream` with 2
threads, as `python run.py --input-file` decodes).

Each server runs from a virtual environment built here: serve.py's from the folder's
requirements-serve.txt, seqcli's from this checkout with the CPU wheel of torch and the
`serve` extra (pip's cache makes both quick after the first time). Every run is bounded: a
fixed number of requests, each with a timeout, and a deadline for the whole benchmark. The
servers and the clients share the machine's cores, as they would on a small host.

    python benchmarks/deploy.py [--requests 2000] [--clients 32] [--lm-requests 200] [--int8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import realsize  # noqa: E402
from record import record  # noqa: E402
from serve import Server, load, show  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 2400.0
TORCH = "torch==2.13.0"


def environment(where: Path, *requirements: str) -> Path:
    """A fresh virtual environment with `requirements` installed; its python."""
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements], check=True)
    return python


def size_mb(python: Path) -> float:
    """What a virtual environment's packages take on disk, pip and setuptools aside."""
    code = ("import sysconfig, pathlib; p = pathlib.Path(sysconfig.get_paths()['purelib']); "
            "print(sum(f.stat().st_size for f in p.rglob('*') if f.is_file() and not "
            "f.relative_to(p).parts[0].startswith(('pip', 'setuptools', '_distutils'))))")
    return int(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout) / 2**20


def export(run: Path, out: Path, *options: str) -> Path:
    subprocess.run([sys.executable, "-m", "seqcli", "export", str(run), "-o", str(out), "--no-test", *options],
                   check=True, capture_output=True)
    return out


def bulk_rate(python: Path, folder: Path, words: list[str], threads: int) -> float:
    """Inputs a second through the runner's own batched decoding (the model loaded first)."""
    code = f"""
import json, sys, time
sys.path.insert(0, {str(folder)!r})
import run
words = json.load(sys.stdin)
model = run.Model(run.HERE, {threads})
started = time.perf_counter()
for _ in model.predict_stream(((str(i), w) for i, w in enumerate(words)), 64, beam_size=1):
    pass
print(len(words) / (time.perf_counter() - started))
"""
    result = subprocess.run([python, "-c", code], input=json.dumps(words), capture_output=True, text=True, check=True)
    return float(result.stdout)


def cpu_seconds(server: Server) -> tuple[float, float]:
    """CPU seconds so far of the server's own process and of its children (the decoders)."""
    def of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return of(server.proc.pid), sum(of(int(c)) for c in children)


def startup(command: list, repeats: int) -> float:
    """The fastest of `repeats` launches to the first healthy answer (2 decoder processes)."""
    best = float("inf")
    for _ in range(repeats):
        server = Server(None, command=command)
        best = min(best, server.started)
        server.stop()
    return best


def served(name: str, command: list, words: list[str], args, stop_at: float) -> dict:
    """One request at a time, then `--clients` clients, one input a request (best of --repeats)."""
    bodies = [{"inputs": [w], "beam_size": 1} for w in words]
    server = Server(None, command=command)
    try:
        alone = max((load(server.port, "/v1/predict", bodies[: len(bodies) // 8], 1, stop_at)
                     for _ in range(args.repeats)), key=lambda r: r["rate"])
        show(f"{name}, one at a time", alone)
        runs = []
        for _ in range(args.repeats):
            before, mine, started = cpu_seconds(server), time.process_time(), time.perf_counter()
            result = load(server.port, "/v1/predict", bodies, args.clients, stop_at)
            wall = time.perf_counter() - started
            after = cpu_seconds(server)
            result["cores"] = {"server": (after[0] - before[0]) / wall, "decoders": (after[1] - before[1]) / wall,
                               "clients": (time.process_time() - mine) / wall}
            runs.append(result)
        together = max(runs, key=lambda r: r["rate"])
        show(f"{name}, {args.clients} clients", together)
        cores = together["cores"]
        print(f"  cores busy: the server's event loop {cores['server']:.2f}, its decoders {cores['decoders']:.2f}, "
              f"the clients {cores['clients']:.2f} (of 2); the server's CPU a request "
              f"{1000 * cores['server'] / together['rate']:.2f} ms", flush=True)
        rss = server.rss_mb() + sum(server.child_rss_mb())
    finally:
        server.stop()
    print(f"  {name}: memory {rss:,.0f} MB (server and decoders)", flush=True)
    return {"alone": alone["rate"], "together": together["rate"], "errors": alone["errors"] + together["errors"],
            "rss": rss}


def streamed(name: str, command: list, primes: list[str], args, stop_at: float) -> dict:
    """A language model's streamed generations: one at a time, then `--clients` clients."""
    bodies = [{"prime": p, "length": args.lm_length, "temperature": 0.8, "stream": True} for p in primes]
    server = Server(None, command=command)
    try:
        alone = load(server.port, "/v1/generate", bodies[: max(1, len(bodies) // 8)], 1, stop_at)
        show(f"{name}, one at a time", alone)
        together = load(server.port, "/v1/generate", bodies, args.clients, stop_at)
        show(f"{name}, {args.clients} clients", together)
    finally:
        server.stop()
    return {"alone": alone["rate"], "together": together["rate"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--lm-requests", type=int, default=200)
    parser.add_argument("--lm-length", type=int, default=50, help="tokens a streamed generation draws")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="each rate is the best of this many runs")
    parser.add_argument("--threads", type=int, default=2, help="the bulk runner's")
    parser.add_argument("--int8", action="store_true", help="also serve the int8 export")
    args = parser.parse_args()
    stop_at = time.time() + DEADLINE
    rng = random.Random(0)
    print(f"servers' defaults (2 decoder processes, a thread each); {args.clients} clients on loopback; the bulk "
          f"runner with {args.threads} threads", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seq2seq = realsize.path("seq2seq")
        folder = export(seq2seq, root / "seq2seq")
        lm_folder = export(realsize.path("lm"), root / "lm")
        bare = environment(root / "bare", "-r", str(folder / "requirements-serve.txt"))
        full = environment(root / "full", TORCH, f"{ROOT}[serve]")
        sizes = {"serve.py": size_mb(bare), "seqcli serve": size_mb(full)}
        print(f"installed: serve.py's environment {sizes['serve.py']:,.0f} MiB; seqcli[serve] with torch (CPU) "
              f"{sizes['seqcli serve']:,.0f} MiB ({sizes['seqcli serve'] / sizes['serve.py']:.1f}x)", flush=True)
        record("deploy", "installed size: seqcli[serve] with torch vs serve.py's", sizes["seqcli serve"],
               sizes["serve.py"], "MiB")
        commands = {"serve.py": [bare, folder / "serve.py"], "seqcli serve": [full, "-m", "seqcli", "serve", seq2seq]}
        starts = {name: startup(command, args.repeats) for name, command in commands.items()}
        print(f"start-up to the first healthy answer, real-size seq2seq: serve.py {starts['serve.py']:.2f} s; "
              f"seqcli serve {starts['seqcli serve']:.2f} s", flush=True)
        record("deploy", "start-up: seqcli serve vs serve.py (s)", starts["seqcli serve"], starts["serve.py"], "s")

        tests = realsize.test_inputs(seq2seq)
        words = [rng.choice(tests) for _ in range(args.requests)]
        bulk = max(bulk_rate(bare, folder, words, args.threads) for _ in range(args.repeats))
        print(f"{'runner bulk (predict_stream, batches of 64)':<42} {bulk:>9,.1f} inputs/s", flush=True)
        folders = {"serve.py": folder}
        if args.int8:
            folders["serve.py, int8"] = export(seq2seq, root / "seq2seq-int8", "--quantize", "int8")
            commands["serve.py, int8"] = [bare, folders["serve.py, int8"] / "serve.py"]
        results = {name: served(f"real-size seq2seq, {name}", command, words, args, stop_at)
                   for name, command in commands.items()}
        for name, result in results.items():
            print(f"  {name}: {args.clients} clients / one at a time {result['together'] / result['alone']:.2f} "
                  f"(goal >= 5); / runner bulk {result['together'] / bulk:.2f} (goal >= 0.8); errors "
                  f"{result['errors']}", flush=True)
            record("deploy", f"real-size seq2seq, {name}: {args.clients} clients vs one at a time",
                   result["together"], result["alone"], "req/s", ">= 5")
            record("deploy", f"real-size seq2seq, {name}: {args.clients} clients vs the runner's bulk",
                   result["together"], bulk, "inputs/s", ">= 0.8")

        tokens = [t for t in json.loads((lm_folder / "fields" / "text.json").read_text())["tokens"]
                  if not t.startswith("<")][:500]
        primes = [" ".join(rng.choice(tokens) for _ in range(3)) for _ in range(args.lm_requests)]
        lm_commands = {"serve.py": [bare, lm_folder / "serve.py"],
                       "seqcli serve": [full, "-m", "seqcli", "serve", realsize.path("lm")]}
        for name, command in lm_commands.items():
            result = streamed(f"10,000-word LM streamed, {name}", command, primes, args, stop_at)
            print(f"  {name}: {args.clients} clients / one at a time {result['together'] / result['alone']:.2f} "
                  f"(goal >= 5)", flush=True)
            record("deploy", f"10,000-word LM streamed, {name}: {args.clients} clients vs one at a time",
                   result["together"], result["alone"], "req/s", ">= 5")


if __name__ == "__main__":
    main()
