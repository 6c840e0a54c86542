"""Non-sequential data read sequentially, and written sequentially, with DRAW's attention.

`glimpse` (many-to-one over time, from one image): a recurrent network takes a few glimpses
of an image, each an N x N patch it places itself (`seqcli.nn.draw`), and names the class
from what it saw. `draw` (one-to-many): its mirror, conditioned on a class, writes onto a
canvas one patch per step; the image is the sigmoid of the sum. Both read the images of a
dataset with an `input` field of equal-sized (rows, columns) examples and a `label` field,
such as `digits`.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from seqcli.api import (HIGHER, INPUT, LABEL, LOWER, CellSpec, Data, DataError, Exported, Figure, Graph, Hypothesis, Labels, Numeric, Output,
                        Prediction, Range, Samples, device_of)
from seqcli.layers import ExampleTask, Recurrent, draw, encode_input, pyplot, require, save, traceable
from seqcli.tasks.classify import Size, Smoothing, label_metrics

Glimpses = Annotated[int, Range(1, 1000)]
Grid = Annotated[int, Range(1, 64)]
Layers = Annotated[int, Range(1, 64)]


def image_size(data: Data, task: str) -> tuple[int, int]:
    """(rows, columns) of the dataset's images: its `input` field has a fixed number of steps."""
    require(data.fields, task, input=Numeric, label=Labels)
    field = data.fields[INPUT]
    if not field.steps:
        raise DataError(f"task {task} needs images of one size: a dataset whose input field has a fixed number of "
                        f"rows (steps), such as digits")
    return field.steps, field.dim


def stack_images(images: list[torch.Tensor], size: tuple[int, int], device) -> torch.Tensor:
    for i, image in enumerate(images):
        if tuple(image.shape) != size:
            raise DataError(f"input {i + 1}: an image of {image.shape[0]} rows of {image.shape[1]} values; the model "
                            f"reads {size[0]} rows of {size[1]}")
    return torch.stack(images).to(device, torch.float32)


class GlimpseClassifier(nn.Module):
    """Glimpse t: the window comes from the state after glimpse t-1; the patch and the
    window's numbers are the recurrent step's input; the last state names the class."""

    def __init__(self, size: tuple[int, int], n_labels: int, cell: CellSpec, hidden_size: int, num_layers: int,
                 glimpses: int, grid: int):
        super().__init__()
        self.size, self.glimpses, self.grid = size, glimpses, grid
        self.locate = draw.Locator(hidden_size, size[0], size[1], grid)
        self.rnn = Recurrent(cell, grid * grid + 5, hidden_size, num_layers)
        self.out = nn.Linear(hidden_size, n_labels)

    def forward(self, images: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """images (B, H, W) -> logits (B, labels); `trace` collects (window, patch) per glimpse."""
        B = images.shape[0]
        layers = self.rnn.unstack(self.rnn.initial_state(B, images))
        h = images.new_zeros(B, self.rnn.hidden_size)
        for _ in range(self.glimpses):
            window = self.locate(h)
            patch = draw.read(images, window, self.grid)
            h, layers = self.rnn.step_layers(torch.cat([patch.flatten(1), window.raw], -1), layers)
            if trace is not None:
                trace.append((window, patch))
        return self.out(h)


class DrawWriter(nn.Module):
    """Step t: the state reads the class embedding, places a window, and writes a patch."""

    def __init__(self, size: tuple[int, int], n_labels: int, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, steps: int, grid: int):
        super().__init__()
        self.size, self.steps, self.grid = size, steps, grid
        self.embed = nn.Embedding(n_labels, embedding_size)
        self.rnn = Recurrent(cell, embedding_size, hidden_size, num_layers)
        self.locate = draw.Locator(hidden_size, size[0], size[1], grid)
        self.what = nn.Linear(hidden_size, grid * grid)

    def forward(self, labels: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """labels (B,) -> canvas logits (B, H, W); `trace` collects (window, canvas so far) per step."""
        B = labels.shape[0]
        x = self.embed(labels)
        layers = self.rnn.unstack(self.rnn.initial_state(B, x))
        canvas = x.new_zeros(B, *self.size)
        for _ in range(self.steps):
            h, layers = self.rnn.step_layers(x, layers)
            window = self.locate(h)
            canvas = canvas + draw.write(self.what(h).view(B, self.grid, self.grid), window, *self.size)
            if trace is not None:
                trace.append((window, canvas))
        return canvas


class Glimpse(ExampleTask):
    """Classify an image from a few glimpses. Metrics: loss, accuracy, macro_f1."""

    unit = "examples"
    directions = {"accuracy": HIGHER, "macro_f1": HIGHER}

    def __init__(self, label_smoothing: Smoothing = 0.0):
        """`label_smoothing`: the share of each target's probability spread over the other
        classes in the training loss (Szegedy et al., 2016); validation is scored without it."""
        self.label_smoothing = label_smoothing

    def build_model(self, data: Data, cell: CellSpec, hidden_size: Size = 128, num_layers: Layers = 1,
                    glimpses: Glimpses = 4, grid: Grid = 4) -> GlimpseClassifier:
        """`glimpses`: how many glimpses the model takes of each image, one a step.

        `grid`: each glimpse reads a grid x grid patch of filters, placed and sized by the model."""
        size = image_size(data, "glimpse")
        return GlimpseClassifier(size, len(data.fields[LABEL]), cell, hidden_size, num_layers, glimpses, grid)

    def collate(self, examples, device):
        images = torch.stack([e[INPUT] for e in examples]).to(device, torch.float32)
        return {"x": images, "y": torch.stack([e[LABEL] for e in examples]).to(device)}

    def loss(self, model, batch):
        logits = model(batch["x"])
        return F.cross_entropy(logits, batch["y"], label_smoothing=self.smoothing(model)), len(batch["y"]), logits

    def metrics(self, model, parts, fields):
        return label_metrics(parts, len(fields[LABEL]))

    def sample(self, model, fields: dict, inputs: list[str] = (), *,
               glimpse_plot: Annotated[str | None, Output(".png")] = None) -> Samples:
        """For each input image (rows 'a b c; d e f'), the most likely label and its
        probability.

        `glimpse_plot`: a file (out.png) to draw where each glimpse fell (the numbers in out.json)."""
        images = [encode_input(text, fields[INPUT], f"input {i + 1}") for i, text in enumerate(inputs)]
        if not images:
            raise DataError("give images to classify (--input 'a b c; d e f' rows, or --input-file)")
        x = stack_images(images, model.size, device_of(model))
        trace: list = []
        with torch.no_grad():
            probs = model(x, trace).softmax(-1)
        best = probs.max(-1)
        names = fields[LABEL].names
        predictions = [Prediction.labelled([Hypothesis(names[i], p)])
                       for p, i in zip(best.values.tolist(), best.indices.tolist())]
        figures = {}
        if glimpse_plot is not None:
            record = [{"label": prediction.hypotheses[0].output, "image": x[i].tolist(),
                       "glimpses": [{**w.as_rows()[i], "patch": p[i].tolist()} for w, p in trace]}
                      for i, prediction in enumerate(predictions)]
            figures["glimpse_plot"] = Figure(lambda path: glimpses(record, model.grid, path), record)
        return Samples.of(predictions, figures)

    def export(self, model, fields: dict) -> Exported:
        """"model": images (B, H, W) -> logits (B, labels)."""
        images = torch.zeros(2, *model.size)
        return Exported("labels", [Graph("model", traceable(model), {"x": images}, ["logits"], {"x": {0: "batch"}})],
                        {"input": INPUT, "labels": LABEL, "image": list(model.size)})


class Draw(ExampleTask):
    """Write an image of a class onto a canvas, one attended patch per step. Metrics: loss
    (binary cross-entropy per pixel) and mse."""

    unit = "examples"
    directions = {"mse": LOWER}

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 16, hidden_size: Size = 128,
                    num_layers: Layers = 1, steps: Glimpses = 8, grid: Grid = 3) -> DrawWriter:
        """`steps`: how many patches the model writes onto the canvas, one a step.

        `grid`: each patch is a grid x grid set of filters, placed and sized by the model."""
        size = image_size(data, "draw")
        if any(e[INPUT].min() < 0 or e[INPUT].max() > 1 for e in data.splits.get("train", [])[:200]):
            raise DataError("task draw needs pixel values between 0 and 1")
        return DrawWriter(size, len(data.fields[LABEL]), cell, embedding_size, hidden_size, num_layers, steps, grid)

    def collate(self, examples, device):
        return {"y": torch.stack([e[LABEL] for e in examples]).to(device),
                "x": torch.stack([e[INPUT] for e in examples]).to(device, torch.float32)}

    def loss(self, model, batch):
        logits = model(batch["y"])
        return F.binary_cross_entropy_with_logits(logits, batch["x"]), len(batch["y"]), logits

    def metrics(self, model, parts, fields):
        errors = torch.cat([((logits.sigmoid() - batch["x"]) ** 2).flatten(1).mean(1) for batch, logits in parts])
        return {"mse": errors.mean().item()}

    def sample(self, model, fields: dict, inputs: list[str] = (), *,
               canvas_plot: Annotated[str | None, Output(".png")] = None) -> Samples:
        """For each class name given, the image written, as text (darker characters for
        darker pixels).

        `canvas_plot`: a file (out.png) to save the canvas after every step as a strip."""
        labels = fields[LABEL]
        ids = []
        for i, text in enumerate(inputs):
            if text.strip() not in labels.index:
                raise DataError(f"input {i + 1}: unknown class {text.strip()!r}; the model knows: {', '.join(labels.names)}")
            ids.append(labels.index[text.strip()])
        if not ids:
            raise DataError("give the classes to draw (--input 3 --input 7)")
        trace: list = []
        with torch.no_grad():
            final = model(torch.tensor(ids, device=device_of(model)), trace).sigmoid()
        figures = {}
        if canvas_plot is not None:
            record = [{"label": labels.names[k], "canvases": [c[i].sigmoid().tolist() for _, c in trace],
                       "windows": [w.as_rows()[i] for w, _ in trace]} for i, k in enumerate(ids)]
            figures["canvas_plot"] = Figure(lambda path: canvas_strip(record, model.grid, path), record)
        return Samples([f"class {labels.names[k]}:\n" + "\n".join(shade(row) for row in image.tolist()) + "\n"
                        for k, image in zip(ids, final)], figures)

    def export(self, model, fields: dict) -> Exported:
        """"model": labels (B,) -> images (B, H, W) in [0, 1]."""
        return Exported("image", [Graph("model", Drawn(traceable(model)), {"labels": torch.zeros(2, dtype=torch.long)},
                                        ["images"], {"labels": {0: "batch"}})],
                        {"labels": LABEL, "shades": SHADES})


class Drawn(nn.Module):
    """A DRAW writer whose canvas is the image (the sigmoid of its logits)."""

    def __init__(self, model: DrawWriter):
        super().__init__()
        self.model = model

    def forward(self, labels):
        return self.model(labels).sigmoid()


SHADES = " .:-=+*#%@"


def shade(row: list[float]) -> str:
    return "".join(SHADES[min(int(v * len(SHADES)), len(SHADES) - 1)] * 2 for v in row)


def glimpses(records: list[dict], grid: int, out, limit: int = 8) -> None:
    """Per image (a row): the image with each glimpse's grid drawn as a numbered box, then the
    patch each glimpse read."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    records = records[:limit]
    steps = len(records[0]["glimpses"])
    fig, axes = plt.subplots(len(records), steps + 1, squeeze=False, layout="constrained",
                             figsize=(1.6 * (steps + 1) + 0.5, 1.7 * len(records)))
    colours = plt.get_cmap("autumn")
    for row, record in zip(axes, records):
        row[0].imshow(record["image"], cmap="gray_r", vmin=0, vmax=1)
        row[0].set_title(f"read as {record['label']}", fontsize=8)
        for t, g in enumerate(record["glimpses"]):
            half = g["delta"] * (grid - 1) / 2 + g["sigma"]
            colour = colours(t / max(steps - 1, 1))
            row[0].add_patch(Rectangle((g["gx"] - half, g["gy"] - half), 2 * half, 2 * half, fill=False,
                                       edgecolor=colour, linewidth=1.4))
            row[0].text(g["gx"], g["gy"], str(t + 1), color=colour, fontsize=7, ha="center", va="center")
            row[t + 1].imshow(g["patch"], cmap="gray_r")
            row[t + 1].set_title(f"glimpse {t + 1}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    save(fig, out)


def canvas_strip(records: list[dict], grid: int, out, limit: int = 10) -> None:
    """Per class drawn (a row): the canvas after each writing step, left to right, with the
    window the step wrote through."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    records = records[:limit]
    steps = len(records[0]["canvases"])
    fig, axes = plt.subplots(len(records), steps, squeeze=False, layout="constrained",
                             figsize=(1.1 * steps + 0.5, 1.2 * len(records)))
    for row, record in zip(axes, records):
        for t, (ax, canvas, w) in enumerate(zip(row, record["canvases"], record["windows"])):
            ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
            half = w["delta"] * (grid - 1) / 2 + w["sigma"]
            ax.add_patch(Rectangle((w["gx"] - half, w["gy"] - half), 2 * half, 2 * half, fill=False,
                                   edgecolor="tab:red", linewidth=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_ylabel(record["label"], rotation=0, labelpad=10)
        row[0].set_title("step 1", fontsize=7)
        row[-1].set_title(f"step {steps}", fontsize=7)
    save(fig, out)
