"""Task `tag` (many-to-many, synced): a label for every step.

Part-of-speech or entity tags, per-frame classes, the copy-memory problem. A (by default
bidirectional) encoder reads the whole sequence; each step's output is classified.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from seqcli.api import HIGHER, INPUT, TAGS, CellSpec, Data, Exported, Graph, Labels, Numeric, Range, Vocab, device_of
from seqcli.layers import (IGNORE, Encoder, ExampleTask, MeanProbabilities, pad, require, sequence_inputs, stack_inputs,
                           traceable, user_batch)
from seqcli.tasks.classify import Dropout, Size, Smoothing


class Tagger(nn.Module):
    def __init__(self, field, n_tags: int, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, dropout: float, bidirectional: bool, weight_drop: float = 0.0):
        super().__init__()
        self.encoder = Encoder(field, cell, embedding_size, hidden_size, num_layers, dropout, bidirectional,
                               weight_drop)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.encoder.output_size, n_tags))

    def forward(self, x, lengths):
        """-> logits (T, B, tags)."""
        out, _ = self.encoder(x, lengths)
        return self.out(out)


class Tag(ExampleTask):
    """Sequence tagging. Metrics: loss, accuracy (over all tokens)."""

    directions = {"accuracy": HIGHER}

    def __init__(self, label_smoothing: Smoothing = 0.0):
        """`label_smoothing`: the share of each target's probability spread over the other
        classes in the training loss (Szegedy et al., 2016); validation is scored without it."""
        self.label_smoothing = label_smoothing

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 64, hidden_size: Size = 128,
                    num_layers: Annotated[int, Range(1, 64)] = 1, dropout: Dropout = 0.0,
                    bidirectional: bool = True, weight_drop: Dropout = 0.0) -> Tagger:
        """`weight_drop`: DropConnect on the recurrent weights (AWD-LSTM's; fused cells)."""
        require(data.fields, "tag", input=(Vocab, Numeric), tags=Labels)
        return Tagger(data.fields[INPUT], len(data.fields[TAGS]), cell, embedding_size, hidden_size,
                      num_layers, dropout, bidirectional, weight_drop)

    def collate(self, examples, device):
        x, lengths = stack_inputs([e[INPUT] for e in examples], device)
        y, _ = pad([e[TAGS] for e in examples], IGNORE)
        return {"x": x, "lengths": lengths, "y": y.to(device)}

    def loss(self, model, batch):
        logits = model(batch["x"], batch["lengths"])
        y = batch["y"]
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                               label_smoothing=self.smoothing(model)), \
            int((y != IGNORE).sum()), logits

    def metrics(self, model, parts, fields):
        right = total = 0
        for batch, logits in parts:
            real = batch["y"] != IGNORE
            right += ((logits.argmax(-1) == batch["y"]) & real).sum().item()
            total += real.sum().item()
        return {"accuracy": right / max(total, 1)}

    def sample(self, model, fields: dict, inputs: list[str] = ()) -> list[str]:
        """Each input with its tags: `token/TAG ...`, or the tags alone for numeric input."""
        batch_x, lengths = user_batch(inputs, fields[INPUT], device_of(model), "inputs to tag")
        with torch.no_grad():
            pred = model(batch_x, lengths).argmax(-1).t().tolist()  # (B, T)
        names = fields[TAGS].names
        lines = []
        for text, tags, n in zip(inputs, pred, lengths.tolist()):
            tags = [names[t] for t in tags[:n]]
            field = fields[INPUT]
            if isinstance(field, Vocab) and field.level != "char":
                lines.append(" ".join(f"{tok}/{tag}" for tok, tag in zip(field.split(text), tags)))
            else:
                lines.append(("" if all(len(t) == 1 for t in tags) else " ").join(tags))
        return lines

    def ensemble(self, models):
        """Several runs' models as one: the mean of their probabilities."""
        return MeanProbabilities(models)

    def export(self, model, fields: dict) -> Exported:
        """"model": (x, lengths) -> logits (T, B, tags)."""
        inputs, dynamic = sequence_inputs(fields[INPUT])
        return Exported("tags", [Graph("model", traceable(model), inputs, ["logits"], dynamic)],
                        {"input": INPUT, "labels": TAGS})
