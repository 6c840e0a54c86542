"""Plugin cells against the built-in fused LSTM, trained through seqcli's language model.

Times one training step (forward, backward, Adam) of the char-lm model with: the built-in
`lstm` (fused nn.LSTM kernel), the same LSTM as a plugin cell (seqcli's generic path: input
projection hoisted, Python loop over `step`), and `mingru` from plugins/seqcli-mingru if
installed (its parallel scan on a GPU, its step loop on a CPU). Same process, same data, warm-up excluded; prints ratios.

    python benchmarks/plugin_cell.py [--steps 10]
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
from seqcli.train.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def time_cell(cls, data, steps: int, warmup: int = 3) -> float:
    torch.manual_seed(0)
    task = LanguageModel()
    model = task.build_model(data, CellSpec(cls), embedding_size=64, hidden_size=256, num_layers=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    config = TrainConfig(batch_size=64, seq_len=128)
    carry, start = None, None
    for i, batch in enumerate(task.batches(data, config, 0)):
        if i == warmup:
            start = time.perf_counter()
        if i == warmup + steps:
            break
        result = task.train_step(model, batch, carry)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        carry = result.carry
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    keep_freed_memory()
    data = TextDataset().load()
    lstm = registry.load("cell", "lstm")
    cells = {"lstm (fused kernel)": lstm,
             "lstm as a plugin cell": type("PluginLSTM", (lstm,), {"fused_kernel": classmethod(lambda c, **o: None)})}
    if "mingru" in registry.names("cell"):
        cells["mingru plugin (parallel: auto)"] = registry.load("cell", "mingru")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; char-lm model: embedding 64, hidden 256, "
          f"2 layers, batch 64 x 128 steps; {args.steps} timed steps")
    base = None
    for name, cls in cells.items():
        seconds = time_cell(cls, data, args.steps)
        base = base or seconds
        print(f"{name:<32} {seconds * 1000:8.1f} ms/step   {seconds / base:5.2f}x the fused LSTM")
        if seconds is not base:
            record("plugin_cell", f"char-lm training step: {name} (vs the built-in fused LSTM)", seconds * 1000,
                   base * 1000, "ms/step", "<= 1.4" if "lstm" in name else "")


if __name__ == "__main__":
    main()
