"""Task `regress` (many-to-one regression): read a sequence, predict one number.

The recurrent encoder reads the sequence (padding masked) and a linear layer maps the last
states of both directions to the target, scaled by the training split's mean and std. The
loss is the mean squared error in those standard units; `mae` and `rmse` are in the
target's own units.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from seqcli.api import HIGHER, INPUT, LOWER, TARGET, CellSpec, Data, DataError, Exported, Graph, Numeric, Range, StepResult, Task, \
    TrainConfig, Vocab, device_of
from seqcli.layers import Encoder, batches, encode_input, pad, sequence_inputs, traceable

Size = Annotated[int, Range(1, 4096)]


class Regressor(nn.Module):
    def __init__(self, field: Vocab, target: Numeric, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, dropout: float, bidirectional: bool):
        super().__init__()
        self.encoder = Encoder(field, cell, embedding_size, hidden_size, num_layers, dropout, bidirectional)
        self.out = nn.Linear(self.encoder.output_size, 1)
        self.register_buffer("mean", torch.tensor(target.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(target.std, dtype=torch.float32))

    def forward(self, x, lengths):
        """x (T, B) ids, lengths (B,) -> predictions (B, 1) in standard units."""
        _, state = self.encoder(x, lengths)
        return self.out(self.encoder.summary(state))


class Regress(Task):
    """Sequence to number. Metrics: loss (MSE in standard units), mae and rmse (target units)."""

    api_version = "1.4"  # directions
    main_metric = "mae"
    directions = {"mae": LOWER, "rmse": LOWER, "within": HIGHER}
    unit = "sequences"

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 16, hidden_size: Size = 64,
                    num_layers: Annotated[int, Range(1, 16)] = 1,
                    dropout: Annotated[float, Range(0, 1, hi_open=True)] = 0.0, bidirectional: bool = True) -> Regressor:
        source, target = data.fields.get(INPUT), data.fields.get(TARGET)
        if not isinstance(source, Vocab) or not isinstance(target, Numeric) or target.dim != 1:
            raise DataError("task regress needs a dataset with an 'input' vocabulary and a one-number 'target' "
                            "(the fasta dataset gives both)")
        return Regressor(source, target, cell, embedding_size, hidden_size, num_layers, dropout, bidirectional)

    def batches(self, data: Data, config: TrainConfig, epoch: int):
        return batches(data.splits["train"], config.batch_size, config.seed, epoch)

    @staticmethod
    def collate(model, examples):
        device = device_of(model)
        x, lengths = pad([e[INPUT] for e in examples])
        y = torch.stack([e[TARGET] for e in examples]).to(device)  # (B, 1), target units
        return x.to(device), lengths.to(device), (y - model.mean) / model.std

    def train_step(self, model, batch, carry) -> StepResult:
        x, lengths, y = self.collate(model, batch)
        return StepResult(((model(x, lengths) - y) ** 2).mean(), len(batch))

    def evaluate(self, model, data: Data, split: str, config: TrainConfig,
                 tolerance: Annotated[float, Range(0)] = 1.0) -> dict[str, float]:
        """`tolerance`: the largest error (in target units) that counts as `within`."""
        examples = data.splits[split]
        if config.eval_batches is not None:
            examples = examples[: config.eval_batches * config.batch_size]
        squared, errors = 0.0, []
        for i in range(0, len(examples), config.batch_size):
            x, lengths, y = self.collate(model, examples[i:i + config.batch_size])
            prediction = model(x, lengths)
            squared += ((prediction - y) ** 2).sum().item()
            errors.append(((prediction - y) * model.std).abs().flatten())
        error = torch.cat(errors)
        return {"loss": squared / len(examples), "mae": error.mean().item(), "rmse": error.pow(2).mean().sqrt().item(),
                "within": (error <= tolerance).float().mean().item()}

    def sample(self, model, fields: dict, inputs: list[str] = (), *, precision: Annotated[int, Range(0, 10)] = 1,
               unit: str = "") -> list[str]:
        """The predicted number for each input sequence, with `precision` decimals and `unit`
        after it."""
        if not inputs:
            raise DataError("give sequences (--input ACGT... or --input-file FILE)")
        encoded = [{INPUT: encode_input(text.strip().upper(), fields[INPUT], f"input {i + 1}"), TARGET: torch.zeros(1)}
                   for i, text in enumerate(inputs)]
        x, lengths, _ = self.collate(model, encoded)
        values = (model(x, lengths) * model.std + model.mean).flatten().tolist()
        return [f"{v:.{precision}f}{(' ' + unit) if unit else ''}" for v in values]

    def export(self, model, fields: dict) -> Exported:
        """For `seqcli export` (API 1.2): one graph from the ids and lengths to the number in
        the target's units, which the reference runner prints as a "values" model's."""
        inputs, dynamic = sequence_inputs(fields[INPUT])
        return Exported("values", [Graph("model", InTargetUnits(traceable(model)), inputs, ["values"], dynamic)],
                        {"input": INPUT, "target": TARGET})


class InTargetUnits(nn.Module):
    def __init__(self, model: Regressor):
        super().__init__()
        self.model = model

    def forward(self, x, lengths):
        return self.model(x, lengths) * self.model.std + self.model.mean
