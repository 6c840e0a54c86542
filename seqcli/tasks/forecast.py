"""Task `forecast` (many-to-one or many-to-many, numeric): the next values of a series.

The encoder reads a window of scaled inputs (the training split's mean and std, kept in the
model) and a linear head predicts `horizon` future rows of the target columns at once. Also
fits numeric many-to-one problems such as the adding problem.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from seqcli.api import INPUT, LOWER, TARGET, CellSpec, Data, Exported, Graph, Numeric, Range, device_of
from seqcli.layers import (Encoder, ExampleTask, MeanOutputs, Scale, require, sequence_inputs, stack_inputs, traceable,
                           user_batch)
from seqcli.tasks.classify import Dropout, Size


class Forecaster(nn.Module):
    def __init__(self, inputs: Numeric, target: Numeric, cell: CellSpec, hidden_size: int, num_layers: int,
                 dropout: float, bidirectional: bool):
        super().__init__()
        self.horizon, self.dim = target.steps or 1, target.dim
        self.encoder = Encoder(inputs, cell, 0, hidden_size, num_layers, dropout, bidirectional)
        self.target_scale = Scale(target)
        self.head = nn.Linear(self.encoder.output_size, self.horizon * self.dim)

    def forward(self, x, lengths):
        """x (T, B, D) raw values -> predictions (B, horizon, dim) in scaled units."""
        _, state = self.encoder(x, lengths)
        return self.head(self.encoder.summary(state)).view(-1, self.horizon, self.dim)


class Forecast(ExampleTask):
    """Numeric prediction. Metrics: loss (MSE in scaled units), mae and rmse in the data's
    units, and the same for a naive forecast (the last observed value where the target is an
    input column, else the training mean) as baseline_mae and baseline_rmse."""

    unit = "values"
    directions = {"mae": LOWER, "rmse": LOWER, "baseline_mae": LOWER, "baseline_rmse": LOWER}

    def build_model(self, data: Data, cell: CellSpec, hidden_size: Size = 64,
                    num_layers: Annotated[int, Range(1, 64)] = 1, dropout: Dropout = 0.0,
                    bidirectional: bool = False) -> Forecaster:
        require(data.fields, "forecast", input=Numeric, target=Numeric)
        return Forecaster(data.fields[INPUT], data.fields[TARGET], cell, hidden_size, num_layers, dropout,
                          bidirectional)

    def collate(self, examples, device):
        x, lengths = stack_inputs([e[INPUT] for e in examples], device)
        return {"x": x, "lengths": lengths, "y": torch.stack([e[TARGET] for e in examples]).to(device)}

    def loss(self, model, batch):
        pred = model(batch["x"], batch["lengths"])
        return F.mse_loss(pred, model.target_scale(batch["y"])), batch["y"].numel(), pred

    def metrics(self, model, parts, fields):
        target: Numeric = fields[TARGET]
        abs_err = sq_err = base_abs = base_sq = count = 0.0
        for batch, pred in parts:
            y = batch["y"]  # (B, horizon, dim)
            values = model.target_scale.inverse(pred)
            if target.last_of is not None:
                last = batch["x"][batch["lengths"] - 1, torch.arange(y.shape[0], device=y.device)]  # (B, D)
                naive = last[:, target.last_of].unsqueeze(1).expand_as(y)
            else:
                naive = torch.tensor(target.mean, device=y.device).expand_as(y)
            abs_err += (values - y).abs().sum().item()
            sq_err += ((values - y) ** 2).sum().item()
            base_abs += (naive - y).abs().sum().item()
            base_sq += ((naive - y) ** 2).sum().item()
            count += y.numel()
        return {"mae": abs_err / count, "rmse": math.sqrt(sq_err / count),
                "baseline_mae": base_abs / count, "baseline_rmse": math.sqrt(base_sq / count)}

    def sample(self, model, fields: dict, inputs: list[str] = ()) -> list[str]:
        """For each input window ('a b; c d; ...', one row per step), the forecast rows."""
        batch_x, lengths = user_batch(inputs, fields[INPUT], device_of(model), "input windows ('a b; c d; ...')")
        with torch.no_grad():
            values = model.target_scale.inverse(model(batch_x, lengths)).tolist()
        return ["; ".join(" ".join(f"{v:.6g}" for v in row) for row in rows) for rows in values]

    def ensemble(self, models):
        """Several runs' models as one: the mean of their forecasts."""
        return MeanOutputs(models)

    def export(self, model, fields: dict) -> Exported:
        """"model": (x, lengths) -> the forecast (B, horizon, dim) in the data's units."""
        inputs, dynamic = sequence_inputs(fields[INPUT])
        return Exported("values", [Graph("model", InDataUnits(traceable(model)), inputs, ["values"], dynamic)],
                        {"input": INPUT, "target": TARGET})


class InDataUnits(nn.Module):
    """A forecaster whose predictions are scaled back to the data's units."""

    def __init__(self, model: Forecaster):
        super().__init__()
        self.model = model

    def forward(self, x, lengths):
        return self.model.target_scale.inverse(self.model(x, lengths))
