"""Training throughput: seqcli's language model against a hand-written PyTorch loop.

Both train the same LSTM language model (same sizes, data, batching, Adam, gradient
clipping) on the default corpus; each runs in its own process, warm-up steps excluded.
Prints tokens/s for each and the ratio seqcli / plain (goal: >= 0.95). A third run, the
plain loop with seqcli's allocator setting, shows how much of the difference is the loop
and how much the allocator (CPU only: the setting is glibc's).

On a GPU (`--device cuda`) both train on cuDNN's fused kernels; `--precision bf16` runs
both forward passes under autocast, as `train.precision: bf16` does.

    python benchmarks/lm_throughput.py [--steps 30] [--size small|large|gpu|both] [--cell lstm]
                                       [--device cpu|cuda] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402

SIZES = {  # embedding, hidden, layers, batch, seq_len
    "small": (64, 256, 2, 64, 128),
    "large": (128, 512, 2, 32, 128),
    "gpu": (256, 1024, 2, 128, 128),  # a size worth a GPU; not in "both"
}
WARMUP = 5


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so that a clock read counts it."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def plain(size: str, cell: str, steps: int, device: str, precision: str, tuned: bool = False) -> float:
    """The baseline: the loop a PyTorch user writes by hand (`tuned`: with seqcli's allocator
    setting, to separate the loop's cost from the allocator's gain)."""
    import torch
    import torch.nn as nn

    from seqcli.data.datasets.text import TextDataset

    if tuned:
        from seqcli.train.memory import keep_freed_memory

        keep_freed_memory()
    E, H, L, B, T = SIZES[size]
    torch.manual_seed(0)
    data = TextDataset().load()
    V = len(data.fields["text"])
    stream = data.splits["train"]
    n = stream.numel() // B
    columns = stream[: n * B].view(B, n).t().to(device)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](E, H, L)
            self.out = nn.Linear(H, V)

        def forward(self, x, h):
            y, h = self.rnn(self.embed(x), h)
            return self.out(y), h

    model = LM().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    h = None
    start = None
    i = 0
    for step in range(WARMUP + steps):
        if step == WARMUP:
            sync(device)
            start = time.perf_counter()
        if i + T + 1 > columns.shape[0]:
            i, h = 0, None
        x = columns[i : i + T].long()
        y = columns[i + 1 : i + 1 + T].long()
        i += T
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits, h = model(x, h)
            h = tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach()
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        loss.item()
    sync(device)
    return steps * B * T / (time.perf_counter() - start)


def seqcli(size: str, cell: str, steps: int, device: str, precision: str) -> float:
    """The same model trained by `seqcli run`'s code path (Trainer, reporter, metric log)."""
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from seqcli import runs
    from seqcli.recipe.resolve import load_recipe
    from seqcli.train import progress

    E, H, L, B, T = SIZES[size]
    times = {}

    class Timing(progress.PlainReporter):
        def step(self, step, loss, targets, lr):
            super().step(step, loss, targets, lr)
            if step in (WARMUP, WARMUP + steps):
                sync(device)
                times[step] = time.perf_counter()

    progress.reporter_for = lambda console, log_every: Timing(console, log_every)
    recipe = load_recipe("char-lm", [
        f"model.embedding_size={E}", f"model.hidden_size={H}", f"model.num_layers={L}", "model.dropout=0",
        f"train.batch_size={B}", f"train.seq_len={T}", f"train.max_steps={WARMUP + steps}",
        f"train.eval_every={WARMUP + steps}", "train.eval_batches=1", "train.log_every=1000", f"model.cell.name={cell}",
        f"train.device={device}", f"train.precision={precision}",
    ])
    recipe.sample = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs.train(recipe, Path(tmp) / "run", Console(file=open("/dev/null", "w")))
    return steps * B * T / (times[WARMUP + steps] - times[WARMUP])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", choices=[*SIZES, "both"], default="small")
    parser.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each; the best counts")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fn = {"plain": plain, "plain-tuned": lambda *a: plain(*a, tuned=True), "seqcli": seqcli}[args.worker]
        print(json.dumps(fn(args.size, args.cell, args.steps, args.device, args.precision)))
        return
    import torch

    gpu = args.device == "cuda"
    where = torch.cuda.get_device_name() if gpu else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, {args.precision}, cell {args.cell}, "
          f"{args.steps} timed steps after {WARMUP} warm-up steps; best of {args.repeats} runs each")
    impls = ("plain", "seqcli") if gpu else ("plain", "plain-tuned", "seqcli")
    print("plain: a hand-written loop" + ("" if gpu else "; plain+malloc: the same with seqcli's allocator setting "
                                               "(seqcli/train/memory.py)"))
    print(f"{'size':<6} {'E/H/layers/batch/seq':<21} {'plain':>8} {'plain+malloc':>13} {'seqcli':>8} "
          f"{'seqcli/plain':>13} {'seqcli/plain+malloc':>20}  (tokens/s)")
    sizes = ["small", "large"] if args.size == "both" else [args.size]
    for size in sizes:
        best = {}
        for _ in range(args.repeats):
            for impl in impls:
                out = subprocess.run([sys.executable, __file__, "--worker", impl, "--size", size, "--cell",
                                      args.cell, "--steps", str(args.steps), "--device", args.device,
                                      "--precision", args.precision], capture_output=True, text=True, check=True)
                best[impl] = max(best.get(impl, 0.0), json.loads(out.stdout.strip().splitlines()[-1]))
        shape = "/".join(map(str, SIZES[size]))
        tuned = best.get("plain-tuned")
        print(f"{size:<6} {shape:<21} {best['plain']:>8,.0f} {tuned or 0:>13,.0f} {best['seqcli']:>8,.0f} "
              f"{best['seqcli'] / best['plain']:>13.2f} {best['seqcli'] / (tuned or best['plain']):>20.2f}")
        label = f"{args.cell.upper()} LM training, {size} ({shape})"
        if gpu:
            label += f", {args.precision}"
        record("lm_throughput", label, best["seqcli"], best["plain"], "tokens/s", ">= 0.95")


if __name__ == "__main__":
    main()
