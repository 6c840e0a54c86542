"""Bulk prediction: `seqcli sample --input-file` over 100,000 short inputs, beam 5 and greedy,
against the same batched decoding written by hand; inputs/s and peak memory of each process.

A `reverse` model (bidirectional LSTM encoder of 64 units, additive attention) is trained for
a few hundred steps so that its outputs stop at the right length. The hand-written loop
loads the same checkpoint, reads the file, and for every batch of `--batch-size` inputs in
file order encodes, pads, runs the encoder and seqcli's batched beam search (or greedy
decoding) and writes the outputs: the decoding is the same, so the ratio is what the
command adds or saves (streaming, grouping inputs by length, progress). Peak memory is the
process's maximum resident set (ru_maxrss); seqcli's is also measured on a tenth of the
inputs, to show it does not grow with their number.

    python benchmarks/bulk.py [--inputs 100000] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402

HAND = r'''
import sys, torch
import seqcli
from seqcli.data import batching
from seqcli.decoding.search import beam_search, sample
run, path, out, beam, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
m = seqcli.load(run)
model, source, target = m.model, m.fields["source"], m.fields["target"]
eos, bos = target.eos, target.bos

def flush(lines, f):
    x = [torch.tensor([source.index[c] for c in line]) for line in lines]
    padded, lengths = batching.pad(x)
    with torch.no_grad():
        state = model.start({"x": padded, "lengths": lengths})
        if beam > 1:
            hyps = [r[0] for r in beam_search(model.decoder, state, len(x), bos, eos, 100, beam)]
        else:
            hyps = sample(model.decoder, state, len(x), bos, eos, 100)
    f.write("".join(target.decode(h.tokens) + "\n" for h in hyps))

with open(path) as inputs, open(out, "w") as f:
    lines = []
    for line in inputs:
        if line.strip():
            lines.append(line.rstrip("\n"))
            if len(lines) == batch_size:
                flush(lines, f)
                lines = []
    if lines:
        flush(lines, f)
'''


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="seqcli-bulk-"))
    run = work / "run"
    subprocess.run([sys.executable, "-m", "seqcli", "run", "reverse", "train.max_steps=400", "train.eval_every=400",
                    "model.hidden_size=64", "dataset.train_size=5000", "--run-dir", str(run)], check=True,
                   capture_output=True)
    rng = random.Random(0)
    lines = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 10))) for _ in range(args.inputs)]
    big, small = work / "in.txt", work / "in-tenth.txt"
    big.write_text("\n".join(lines) + "\n")
    small.write_text("\n".join(lines[: args.inputs // 10]) + "\n")
    hand = work / "hand.py"
    hand.write_text(HAND)
    rates, peaks = {}, {}
    for beam in (5, 1):
        cli = [sys.executable, "-m", "seqcli", "sample", str(run), "--input-file", str(big), "-o", str(work / "out.txt"),
               "--force", "--beam-size", str(beam), "--batch-size", str(args.batch_size)]
        s_time, s_mem = timed(cli)
        h_time, h_mem = timed([sys.executable, str(hand), str(run), str(big), str(work / "hand.txt"), str(beam),
                               str(args.batch_size)])
        agree = sum(a == b for a, b in zip((work / "out.txt").read_text().splitlines(),
                                           (work / "hand.txt").read_text().splitlines()))
        what = f"beam {beam}" if beam > 1 else "greedy"
        rates[beam], peaks[beam] = args.inputs / s_time, s_mem
        print(f"{what}: seqcli {args.inputs / s_time:,.0f} inputs/s ({s_time:.1f} s, peak {s_mem:,.0f} MiB), "
              f"hand-written {args.inputs / h_time:,.0f} inputs/s ({h_time:.1f} s, peak {h_mem:,.0f} MiB); "
              f"time ratio seqcli/hand {s_time / h_time:.2f}; outputs equal on {agree:,}/{args.inputs:,}")
        record("bulk", f"sample --input-file, {args.inputs:,} inputs, {what}: seconds seqcli vs hand-written",
               s_time, h_time, "s")
    _, tenth_mem = timed([sys.executable, "-m", "seqcli", "sample", str(run), "--input-file", str(small), "-o",
                          str(work / "out-tenth.txt"), "--force", "--beam-size", "5",
                          "--batch-size", str(args.batch_size)])
    print(f"seqcli peak memory, beam 5: {tenth_mem:,.0f} MiB for {args.inputs // 10:,} inputs, "
          f"{peaks[5]:,.0f} MiB for {args.inputs:,}")
    print(f"beam 5 costs {rates[1] / rates[5]:.2f}x greedy (time per input)")


if __name__ == "__main__":
    main()
