"""Task `classify` (many-to-one): one label for a whole sequence.

Utterances, sentences, clips, or an image read row by row. The encoder reads the sequence
(padding masked, so a result never depends on the batch it was in) and the outputs are
pooled: the last state of each direction, the mean, or a learned attention.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from seqcli.api import HIGHER, INPUT, LABEL, CellSpec, Data, Exported, Graph, Hypothesis, Labels, Numeric, Prediction, Range, Vocab, \
    device_of
from seqcli.layers import (Encoder, ExampleTask, MeanProbabilities, macro_f1, mask, require, sequence_inputs,
                           stack_inputs, traceable, user_batch)

Size = Annotated[int, Range(1, 65536)]
Dropout = Annotated[float, Range(0, 1, hi_open=True)]
Smoothing = Annotated[float, Range(0, 1, hi_open=True)]


class Classifier(nn.Module):
    def __init__(self, field, n_labels: int, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, dropout: float, bidirectional: bool, pooling: str, weight_drop: float = 0.0):
        super().__init__()
        self.encoder = Encoder(field, cell, embedding_size, hidden_size, num_layers, dropout, bidirectional,
                               weight_drop)
        size = self.encoder.output_size
        self.pooling = pooling
        if pooling == "attention":
            self.score = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1))
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(size, n_labels))

    def forward(self, x, lengths):
        """x (T, B) or (T, B, D), lengths (B,) -> logits (B, labels)."""
        out, state = self.encoder(x, lengths)  # (T, B, D*H)
        if self.pooling == "last":
            pooled = self.encoder.summary(state)
        else:
            inside = mask(lengths, out.shape[0]).unsqueeze(-1)  # (T, B, 1)
            if self.pooling == "mean":
                pooled = (out * inside).sum(0) / lengths[:, None].to(out.dtype)
            else:
                weights = self.score(out).masked_fill(~inside, float("-inf")).softmax(0)  # (T, B, 1)
                pooled = (weights * out).sum(0)
        return self.out(pooled)


def label_metrics(parts, n_labels: int) -> dict[str, float]:
    """accuracy and macro_f1 of (batch with labels 'y', logits) parts."""
    pred = torch.cat([logits.argmax(-1) for _, logits in parts]).cpu()
    gold = torch.cat([batch["y"] for batch, _ in parts]).cpu()
    return {"accuracy": (pred == gold).float().mean().item(), "macro_f1": macro_f1(pred, gold, n_labels)}


class Classify(ExampleTask):
    """Sequence classification. Metrics: loss, accuracy, macro_f1."""

    unit = "examples"

    main_metric = "loss"
    directions = {"accuracy": HIGHER, "macro_f1": HIGHER}

    def __init__(self, label_smoothing: Smoothing = 0.0):
        """`label_smoothing`: the share of each target's probability spread over the other
        classes in the training loss (Szegedy et al., 2016); validation is scored without it."""
        self.label_smoothing = label_smoothing

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 64, hidden_size: Size = 128,
                    num_layers: Annotated[int, Range(1, 64)] = 1, dropout: Dropout = 0.0, bidirectional: bool = True,
                    pooling: Literal["last", "mean", "attention"] = "last", weight_drop: Dropout = 0.0) -> Classifier:
        """`weight_drop`: DropConnect on the recurrent weights (AWD-LSTM's; fused cells).

        `pooling`: what the label is read from: the last step's state (both directions'
        ends when bidirectional), the mean over the steps, or an attention-weighted sum."""
        require(data.fields, "classify", input=(Vocab, Numeric), label=Labels)
        return Classifier(data.fields[INPUT], len(data.fields[LABEL]), cell, embedding_size, hidden_size,
                          num_layers, dropout, bidirectional, pooling, weight_drop)

    def collate(self, examples, device):
        x, lengths = stack_inputs([e[INPUT] for e in examples], device)
        return {"x": x, "lengths": lengths, "y": torch.stack([e[LABEL] for e in examples]).to(device)}

    def loss(self, model, batch):
        logits = model(batch["x"], batch["lengths"])
        return F.cross_entropy(logits, batch["y"], label_smoothing=self.smoothing(model)), len(batch["y"]), logits

    def metrics(self, model, parts, fields):
        return label_metrics(parts, len(fields[LABEL]))

    def sample(self, model, fields: dict, inputs: list[str] = (), *, n_best: Annotated[int, Range(1, 1000)] = 1) -> list[Prediction]:
        """For each input, the `n_best` most likely labels with their probabilities, tab-separated."""
        batch_x, lengths = user_batch(inputs, fields[INPUT], device_of(model), "inputs to classify")
        with torch.no_grad():
            probs = model(batch_x, lengths).softmax(-1)
        top = probs.topk(min(n_best, probs.shape[-1]), dim=-1)
        names = fields[LABEL].names
        return [Prediction.labelled([Hypothesis(names[i], p) for p, i in zip(ps, ids)])
                for ps, ids in zip(top.values.tolist(), top.indices.tolist())]

    def ensemble(self, models):
        """Several runs' models as one: the mean of their probabilities."""
        return MeanProbabilities(models)

    def export(self, model, fields: dict) -> Exported:
        """"model": (x, lengths) -> logits (B, labels)."""
        inputs, dynamic = sequence_inputs(fields[INPUT])
        return Exported("labels", [Graph("model", traceable(model), inputs, ["logits"], dynamic)],
                        {"input": INPUT, "labels": LABEL})
