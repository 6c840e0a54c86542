"""Seq2seq training throughput: seqcli's `reverse` recipe against a hand-written PyTorch loop.

Both train the same model on the same synthetic examples: embedding 32, a bidirectional LSTM
encoder of 128, a tanh bridge into the decoder's initial state, an LSTM decoder of 128 with
additive attention and input feeding, Adam, gradient clipping, batches of 64 shuffled
examples. Each runs in its own process, warm-up steps excluded; prints target tokens/s and
the ratio seqcli / plain. `--device cuda` trains both on the GPU (cuDNN's encoder);
`--precision bf16` runs both forward passes under autocast.

    python benchmarks/seq2seq_throughput.py [--steps 40] [--device cpu|cuda] [--precision fp32|bf16]
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

E, H, B, WARMUP = 32, 128, 64, 5
DATA = dict(problem="reverse", train_size=20000, valid_size=200, test_size=10, max_length=12, symbols=10, seed=0)


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so that a clock read counts it."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def plain(steps: int, device: str, precision: str) -> float:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from seqcli.data.datasets.synthetic import SyntheticDataset
    from seqcli.train.memory import keep_freed_memory

    keep_freed_memory()  # seqcli's allocator setting, so that the comparison is the loop's
    torch.manual_seed(0)
    data = SyntheticDataset(**DATA).load()
    target = data.fields["target"]
    S, T = len(data.fields["source"]), len(target)
    bos, eos = target.bos, target.eos

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed, self.tgt_embed = nn.Embedding(S, E), nn.Embedding(T, E)
            self.encoder = nn.LSTM(E, H, bidirectional=True)
            self.bridge = nn.Linear(2 * H, 2 * H)
            self.cell = nn.LSTMCell(E + H, H)
            self.keys, self.query, self.v = nn.Linear(2 * H, H, bias=False), nn.Linear(H, H), nn.Linear(H, 1, bias=False)
            self.combine, self.out = nn.Linear(3 * H, H), nn.Linear(H, T)

        def forward(self, x, lengths, y_in):
            packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(x), lengths, enforce_sorted=False)
            memory, (h, _) = self.encoder(packed)
            memory, _ = nn.utils.rnn.pad_packed_sequence(memory)  # (S, B, 2H)
            mask = torch.arange(memory.shape[0], device=x.device)[:, None] < lengths.to(x.device)[None, :]
            h, c = torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1))).chunk(2, -1)
            keys, feed, logits = self.keys(memory), memory.new_zeros(x.shape[1], H), []
            for token in y_in.unbind(0):
                h, c = self.cell(torch.cat([self.tgt_embed(token), feed], -1), (h, c))
                scores = self.v(torch.tanh(keys + self.query(h))).squeeze(-1).masked_fill(~mask, float("-inf"))
                context = (scores.softmax(0).unsqueeze(-1) * memory).sum(0)
                feed = torch.tanh(self.combine(torch.cat([h, context], -1)))
                logits.append(self.out(feed))
            return torch.stack(logits)

    model = Model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    examples = data.splits["train"]
    order = torch.randperm(len(examples)).tolist()
    tokens, start = 0, None
    for step in range(WARMUP + steps):
        if step == WARMUP:
            sync(device)
            start, tokens = time.perf_counter(), 0
        chunk = [examples[j] for j in order[step * B : (step + 1) * B]]
        x = nn.utils.rnn.pad_sequence([e["source"] for e in chunk])
        lengths = torch.tensor([len(e["source"]) for e in chunk])
        y_in = nn.utils.rnn.pad_sequence([torch.cat([torch.tensor([bos]), e["target"]]) for e in chunk], padding_value=eos)
        y_out = nn.utils.rnn.pad_sequence([torch.cat([e["target"], torch.tensor([eos])]) for e in chunk],
                                          padding_value=-100)
        x, y_in, y_out = x.to(device), y_in.to(device), y_out.to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x, lengths, y_in)
            loss = F.cross_entropy(logits.flatten(0, 1), y_out.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
        tokens += int((y_out != -100).sum())
    sync(device)
    return tokens / (time.perf_counter() - start)


def seqcli(steps: int, device: str, precision: str) -> float:
    """The `reverse` recipe at the same sizes, through `seqcli run`'s code path."""
    import tempfile

    from rich.console import Console

    from seqcli import runs
    from seqcli.recipe.resolve import load_recipe
    from seqcli.train import progress

    marks = {}

    class Timing(progress.PlainReporter):
        def step(self, step, loss, targets, lr):
            super().step(step, loss, targets, lr)
            if step > WARMUP:
                marks["tokens"] = marks.get("tokens", 0) + targets
            if step in (WARMUP, WARMUP + steps):
                sync(device)
                marks[step] = time.perf_counter()

    progress.reporter_for = lambda console, log_every: Timing(console, log_every)
    recipe = load_recipe("reverse", [
        f"model.embedding_size={E}", f"model.hidden_size={H}", "model.attention=additive", "model.bidirectional=true",
        f"train.batch_size={B}", f"train.max_steps={WARMUP + steps}", f"train.eval_every={WARMUP + steps}",
        "train.eval_batches=1", "train.log_every=1000", *[f"dataset.{k}={v}" for k, v in DATA.items()],
        f"train.device={device}", f"train.precision={precision}",
    ])
    recipe.sample = {"inputs": []}  # no sample at the end
    with tempfile.TemporaryDirectory() as tmp:
        runs.train(recipe, Path(tmp) / "run", Console(file=open("/dev/null", "w")))
    return marks["tokens"] / (marks[WARMUP + steps] - marks[WARMUP])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each; the best counts")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"plain": plain, "seqcli": seqcli}[args.worker](args.steps, args.device, args.precision)))
        return
    best = {}
    for _ in range(args.repeats):
        for impl in ("plain", "seqcli"):
            out = subprocess.run([sys.executable, __file__, "--worker", impl, "--steps", str(args.steps), "--device",
                                  args.device, "--precision", args.precision], capture_output=True, text=True, check=True)
            best[impl] = max(best.get(impl, 0.0), json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"seq2seq (reverse; bi-LSTM {H} encoder, LSTM {H} decoder, additive attention), batch {B}, "
          f"{args.device}, {args.precision}, {args.steps} timed steps, best of {args.repeats}:")
    print(f"plain {best['plain']:,.0f}  seqcli {best['seqcli']:,.0f} target tokens/s; "
          f"seqcli / plain {best['seqcli'] / best['plain']:.2f}")
    label = f"seq2seq training (bi-LSTM {H}, additive attention, batch {B})"
    if args.device == "cuda":
        label += f", {args.precision}"
    record("seq2seq_throughput", label, best["seqcli"], best["plain"], "target tokens/s", ">= 0.95")


if __name__ == "__main__":
    main()
