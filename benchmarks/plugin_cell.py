"""Plugin cells against the built-in fused LSTM, trained through seqcli's language model.

Times one training step (forward, backward, Adam) of the char-lm model with: the built-in
`lstm` (fused nn.LSTM kernel), the same LSTM as a plugin cell (seqcli's generic path: input
projection hoisted, Python loop over `step`), the same with `train.compile` (its `step`
through torch.compile; the compilation happens in the warm-up and is timed apart), and
`mingru` from plugins/seqcli-mingru if installed (its parallel scan on a GPU, its step loop
on a CPU). Same process, same data, warm-up excluded; prints ratios.

    python benchmarks/plugin_cell.py [--steps 10] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from seqcli import registry
from seqcli.api import CellSpec
from seqcli.data.datasets.text import TextDataset
from seqcli.tasks.language_model import LanguageModel
from seqcli.config import TrainConfig
from seqcli.nn.recurrent import compile_steps
from seqcli.train.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def time_cell(cls, data, steps: int, device: str, compiled: bool = False, warmup: int = 3) -> tuple[float, float]:
    """Seconds per training step after the warm-up, and the warm-up's seconds."""
    torch.manual_seed(0)
    task = LanguageModel()
    model = task.build_model(data, CellSpec(cls), embedding_size=64, hidden_size=256, num_layers=2).to(device)
    if compiled:
        compile_steps(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    config = TrainConfig(batch_size=64, seq_len=128)
    carry, begun, start = None, time.perf_counter(), None
    for i, batch in enumerate(task.batches(data, config, 0)):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        if i == warmup + steps:
            break
        result = task.train_step(model, batch, carry)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        carry = result.carry
    sync(device)
    return (time.perf_counter() - start) / steps, start - begun


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    keep_freed_memory()
    data = TextDataset().load()
    lstm = registry.load("cell", "lstm")
    plugin = type("PluginLSTM", (lstm,), {"fused_kernel": classmethod(lambda c, **o: None)})
    cells = {"lstm (fused kernel)": (lstm, False), "lstm as a plugin cell": (plugin, False),
             "lstm as a plugin cell, compiled": (plugin, True)}
    if "mingru" in registry.names("cell"):
        cells["mingru plugin (parallel: auto)"] = (registry.load("cell", "mingru"), False)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; char-lm model: embedding 64, hidden 256, "
          f"2 layers, batch 64 x 128 steps; {args.steps} timed steps")
    base = None
    for name, (cls, compiled) in cells.items():
        seconds, warmup = time_cell(cls, data, args.steps, args.device, compiled)
        base = base or seconds
        print(f"{name:<32} {seconds * 1000:8.1f} ms/step   {seconds / base:5.2f}x the fused LSTM"
              + (f"   (warm-up with compilation {warmup:.1f} s)" if compiled else ""))
        if seconds is not base:
            on = " on the GPU" if args.device == "cuda" else ""
            record("plugin_cell", f"char-lm training step{on}: {name} (vs the built-in fused LSTM)", seconds * 1000,
                   base * 1000, "ms/step", "<= 1.25" if "lstm" in name else "")


if __name__ == "__main__":
    main()
