"""Sampling speed: seqcli's carried-state sampling against re-running the prefix, and beam search.

A language model of the char-lm size (embedding 64, 2 LSTM layers of 256, 104 characters)
generates `--length` tokens at batch 1 and 64: seqcli's way (the prime read once, then one
step per token with the state carried) against the naive loop that feeds the whole text so
far through the model for every new token. Then batched beam search on a seq2seq model of
the `reverse` size, trained for a few seconds so that its outputs have the right lengths.
The language model keeps random weights: its speed does not depend on training.

    python benchmarks/sampling.py [--length 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from seqcli import registry
from seqcli.api import CellSpec, Data
from seqcli.data.datasets.synthetic import SyntheticDataset
from seqcli.vocab import UNK, Vocab
from seqcli.decoding.sampling import next_token
from seqcli.tasks.language_model import LanguageModel
from seqcli.tasks.seq2seq import Seq2Seq
from seqcli.config import TrainConfig

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def rerun_prefix(model, start: torch.Tensor, length: int, generator) -> None:
    """The naive sampler: the whole sequence so far goes through the model for each token."""
    seq = start
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(seq, None)
            token = next_token(logits[-1], 0.8, None, None, generator)
            seq = torch.cat([seq, token.unsqueeze(0)])


def plain_sample(lm, start: int, length: int, generator) -> None:
    """The fastest hand-written PyTorch sampler for the same weights: per token an embedding
    row, one torch.lstm_cell per layer, the output layer, softmax and multinomial."""
    weights = lm.rnn.fused.all_weights
    token = torch.tensor([start])
    state = [(torch.zeros(1, 256), torch.zeros(1, 256)) for _ in weights]
    with torch.no_grad():
        for _ in range(length):
            x = lm.embed(token)
            for layer, w in enumerate(weights):
                state[layer] = torch.lstm_cell(x, state[layer], *w)
                x = state[layer][0]
            probs = (lm.out(x) / 0.8).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def best_rate(fn, tokens: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = max(best, tokens / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each at batch 1; the best counts")
    args = parser.parse_args()
    torch.manual_seed(0)
    chars = [chr(c) for c in range(32, 127)]
    vocab = Vocab([UNK, "\n"] + chars, "char")
    task = LanguageModel()
    lm = task.build_model(Data({}, {"text": vocab}), CellSpec(registry.load("cell", "lstm")),
                          embedding_size=64, hidden_size=256, num_layers=2).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.length} tokens per sample")
    generator = torch.Generator().manual_seed(0)
    ours = best_rate(lambda: task.sample(lm, {"text": vocab}, prime="\n", length=args.length, seed=0),
                     args.length, args.repeats)
    plain = best_rate(lambda: plain_sample(lm, vocab.index["\n"], args.length, generator), args.length, args.repeats)
    print(f"batch 1, best of {args.repeats}: seqcli {ours:,.0f} tokens/s, hand-written torch.lstm_cell loop "
          f"{plain:,.0f} tokens/s, ratio {ours / plain:.2f}")
    record("sampling", "LM sampling, batch 1, hidden 256 (vs hand-written lstm_cell loop)", ours, plain, "tokens/s",
           ">= 5,000 tokens/s")
    print(f"{'':<38}{'batch 1':>14}{'batch 64':>14}   (tokens/s)")
    rates = {}
    for batch in (1, 64):
        start = time.perf_counter()
        task.sample(lm, {"text": vocab}, prime="The ", length=args.length, num_samples=batch, seed=0)
        rates[("carried", batch)] = batch * args.length / (time.perf_counter() - start)
        generator = torch.Generator().manual_seed(0)
        prime = torch.tensor(vocab.encode("The ")).unsqueeze(1).expand(-1, batch)
        start = time.perf_counter()
        rerun_prefix(lm, prime, args.length, generator)
        rates[("rerun", batch)] = batch * args.length / (time.perf_counter() - start)
    print(f"{'seqcli: state carried, one step/token':<38}{rates['carried', 1]:>14,.0f}{rates['carried', 64]:>14,.0f}")
    print(f"{'naive: prefix re-run for every token':<38}{rates['rerun', 1]:>14,.0f}{rates['rerun', 64]:>14,.0f}")
    print(f"{'speed-up':<38}{rates['carried', 1] / rates['rerun', 1]:>13.0f}x{rates['carried', 64] / rates['rerun', 64]:>13.0f}x")
    for batch in (1, 64):
        record("sampling", f"LM sampling, batch {batch}: carried state vs re-running the prefix",
               rates["carried", batch], rates["rerun", batch], "tokens/s")

    # a seq2seq model trained briefly on `reverse`, so that outputs end where they should
    data = SyntheticDataset("reverse", train_size=3000, valid_size=10, test_size=10, max_length=10).load()
    source, target = data.fields["source"], data.fields["target"]
    s2s = Seq2Seq()
    model = s2s.build_model(data, CellSpec(registry.load("cell", "lstm")), embedding_size=32, hidden_size=128,
                            attention="additive")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    steps = 0
    for epoch in range(3):
        for batch in s2s.batches(data, TrainConfig(batch_size=64), epoch):
            steps += 1
            result = s2s.train_step(model, batch, None)
            optimizer.zero_grad()
            result.loss.backward()
            optimizer.step()
    model.eval()
    inputs = ["".join("abcdefghij"[(i * 7 + j) % 10] for j in range(3 + i % 8)) for i in range(64)]
    outputs = s2s.sample(model, data.fields, inputs).lines
    right = sum(o == i[::-1] for i, o in zip(inputs, outputs))
    print(f"seq2seq model: {right}/64 test inputs reversed correctly after {steps} training steps")
    fields = {"source": source, "target": target}
    for beam in (1, 4):
        start = time.perf_counter()
        s2s.sample(model, fields, inputs, beam_size=beam, max_length=20)
        batched = len(inputs) / (time.perf_counter() - start)
        start = time.perf_counter()
        for text in inputs:
            s2s.sample(model, fields, [text], beam_size=beam, max_length=20)
        alone = len(inputs) / (time.perf_counter() - start)
        print(f"seq2seq (LSTM 128, additive attention), 64 inputs, beam {beam}: batched {batched:,.0f} sentences/s, "
              f"one input at a time {alone:,.0f} sentences/s ({batched / alone:.1f}x)")
        record("sampling", f"seq2seq {'greedy' if beam == 1 else f'beam {beam}'} decoding, 64 inputs: batched vs "
               f"one at a time", batched, alone, "sentences/s")


if __name__ == "__main__":
    main()
