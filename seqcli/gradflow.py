"""The gradient-flow lab: how ||dL/dh_t|| shrinks or grows with the distance from the loss.

For each cell (and gradient-clipping setting), a model is built from a recipe and measured
on a fixed batch at initialisation, trained for some steps, and measured again. The
measurement adds a zero probe to the recurrent layer's hidden state at every step
(`Probe`), so the probe's gradient is dL/dh_t through every path, the recurrence
included. A vanilla RNN's gradient is multiplied by W_hh and tanh' at every step and dies
out within a few dozen steps; an LSTM's flows along the additive cell state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from seqcli.errors import SeqcliError

DISTANCES = (0, 1, 2, 5, 10, 20, 30, 40, 50, 75, 100, 150, 200)


class Probe:
    """Zeros added to the top layer's h_t at every step of a recurrent layer's forward pass;
    after backward, `grad_norms()` is ||dL/dh_t||. Installed on one `Recurrent` for the
    duration of a `with` block, through the layer's public step API: the layer itself knows
    nothing of it."""

    def __init__(self, rnn):
        self.rnn = rnn
        self.eps: torch.Tensor | None = None

    def __enter__(self) -> Probe:
        self.rnn.forward = self.forward  # an instance attribute: nn.Module.__call__ finds it first
        return self

    def __exit__(self, *exc) -> None:
        del self.rnn.forward

    def forward(self, x: torch.Tensor, state=None, lengths: torch.Tensor | None = None):
        """The layer's forward one step at a time, adding zeros that require grad to the top
        layer's h_t, where it feeds both the output and the next step."""
        from seqcli.layers import mask as step_mask

        rnn = self.rnn
        if state is None:
            state = rnn.initial_state(x.shape[1], x)
        mask = None if lengths is None else step_mask(lengths.to(x.device), x.shape[0]).unsqueeze(-1)
        self.eps = x.new_zeros(x.shape[0], x.shape[1], rnn.hidden_size, requires_grad=True)
        layers, weights, outs = rnn.unstack(state), rnn.step_weights(), []
        for t, (x_t, eps_t) in enumerate(zip(x.unbind(0), self.eps.unbind(0))):
            h, new = rnn.step_layers(x_t, layers, weights)
            new[-1] = (h + eps_t, *new[-1][1:])
            if mask is not None:
                new = [tuple(torch.where(mask[t], n, o) for n, o in zip(ns, os)) for ns, os in zip(new, layers)]
            layers = new
            outs.append(layers[-1][0])
        out = torch.stack(outs)
        return (out if mask is None else out * mask), rnn.stack(layers)

    def grad_norms(self) -> list[float]:
        """Per step t, the norm of dL/dh_t averaged over the batch."""
        return self.eps.grad.norm(dim=-1).mean(dim=1).tolist()


@dataclass
class Setting:
    cell: str
    clip: float | None
    label: str
    init: list[float] = field(default_factory=list)  # ||dL/dh_t|| by t, before training
    trained: list[float] = field(default_factory=list)  # and after
    losses: list[float] = field(default_factory=list)  # training loss per step
    grad_norms: list[float] = field(default_factory=list)  # total gradient norm per step, before clipping
    diverged_at: int | None = None

    def summary(self) -> dict:
        finite = [g for g in self.grad_norms if math.isfinite(g)]
        clipped = sum(g > self.clip for g in finite) if self.clip else 0
        return {
            "cell": self.cell, "clip": self.clip, "label": self.label,
            "loss_first": _mean(self.losses[:10]), "loss_last": _mean(self.losses[-10:]),
            "grad_norm_median": sorted(finite)[len(finite) // 2] if finite else None,
            "grad_norm_max": max(finite) if finite else None,
            "clipped_fraction": clipped / len(finite) if finite else None,
            "diverged_at": self.diverged_at,
            "init": self.init, "trained": self.trained,
        }


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if math.isfinite(v)]
    return sum(values) / len(values) if values else None


def find_recurrent(model: torch.nn.Module):
    from seqcli.nn.recurrent import Recurrent

    for module in model.modules():
        if isinstance(module, Recurrent):
            if module.num_directions != 1:
                raise SeqcliError("gradflow measures a unidirectional recurrent layer; set model.bidirectional=false")
            return module
    raise SeqcliError("the recipe's model has no recurrent layer (seqcli.cells.Recurrent) to measure")


def measure(task, model, batch) -> list[float]:
    """||dL/dh_t|| for every step t of `batch`, in eval mode (no dropout), weights unchanged."""
    rnn = find_recurrent(model)
    was_training = model.training
    model.eval()
    try:
        with Probe(rnn) as probe, torch.enable_grad():
            result = task.train_step(model, batch, None)
            result.loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return probe.grad_norms()


def train(setting: Setting, task, model, data, config, steps: int) -> None:
    """`steps` steps of the trainer's own step, recording the loss and the gradient norm."""
    from seqcli.train import loop
    from seqcli.train.stepper import Stepper

    stepper = Stepper(task, model, config)
    step, carry = 0, None
    for group in loop.steps(task, data, config):
        for batch in group.batches:  # each batch a step of its own
            result = stepper.forward(batch, carry)
            loss = result.loss.item()
            total = stepper.update(result, clip=setting.clip) if math.isfinite(loss) else math.nan
            setting.losses.append(loss)
            setting.grad_norms.append(total)
            step += 1
            if not (math.isfinite(loss) and math.isfinite(total)):
                setting.diverged_at = step
                return
            carry = result.carry
            if step >= steps:
                return


def run(recipe_name: str, overrides: list[str], cells: list[str], clips: list[float | None] | None, steps: int,
        recurrent_scale: float, reporter=None) -> dict:
    """Measure, train, measure again, for every (cell, clip) pair. Returns plain data."""
    from seqcli import build
    from seqcli.recipe.resolve import load_recipe
    from seqcli.train.device import seed_everything

    settings, data, first_batch, length = [], None, None, None
    for cell in cells:
        recipe = load_recipe(recipe_name, [*overrides, f"model.cell.name={cell}"])
        config = recipe.train
        if data is None:
            data = build.data(recipe)
            task = build.task(recipe)
            first_batch = next(iter(task.batches(data, config, 0)))
        for clip in clips if clips is not None else [config.clip_grad_norm]:
            label = cell if clips is None or len(clips) == 1 else f"{cell}, clip {clip if clip else 'none'}"
            setting = Setting(cell, clip, label)
            seed_everything(config.seed)
            model = build.model(task, data, recipe)
            if recurrent_scale != 1.0:
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        if "weight_hh" in name:
                            p.mul_(recurrent_scale)
            if reporter:
                reporter(f"{label}: measuring at initialisation, training {steps} steps, measuring again")
            setting.init = measure(task, model, first_batch)
            train(setting, task, model, data, config, steps)
            setting.trained = measure(task, model, first_batch) if setting.diverged_at is None else []
            settings.append(setting)
            length = len(setting.init)
    return {"recipe": recipe_name, "overrides": overrides, "steps": steps, "recurrent_scale": recurrent_scale,
            "sequence_length": length, "settings": [s.summary() for s in settings]}


def by_distance(norms: list[float]) -> dict[int, float]:
    """{distance from the last step: ||dL/dh||} at the distances shown in tables."""
    T = len(norms)
    shown = [d for d in DISTANCES if d < T] + ([T - 1] if T - 1 not in DISTANCES else [])
    return {d: norms[T - 1 - d] for d in sorted(set(shown))}


def plot(result: dict, out) -> None:
    from seqcli import plots

    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, layout="constrained")
    for ax, phase, title in ((axes[0], "init", "at initialisation"),
                             (axes[1], "trained", f"after {result['steps']} training steps")):
        for s in result["settings"]:
            norms = s[phase]
            if not norms:
                continue
            T = len(norms)
            values = [max(v, 1e-30) for v in reversed(norms)]  # distance 0 first
            ax.plot(range(T), values, label=s["label"])
        ax.set_yscale("log")
        ax.set_title(f"||dL/dh_t|| {title}")
        ax.set_xlabel("distance from the last step (t = T-1-distance)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("mean over a batch")
    axes[0].legend(fontsize=8)
    plots.save(fig, out)
