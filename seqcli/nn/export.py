"""Models as `torch.export` and the ONNX exporter can trace them, for `seqcli export`.

A `Recurrent` stack reads padded batches with packed sequences, which no exporter traces, and
a plugin cell loops in Python over a number of steps that is only known at run time. So
`traceable(model)` gives a copy of a model in which every `Recurrent` that reads whole
sequences runs each layer and direction on its own, over a dynamic number of steps:

- every cell as a scan over its step (`torch` scan, exported as ONNX Scan), the input
  projection hoisted out of it as one matrix product; the fused lstm, gru and rnn stacks in
  PyTorch's own formulas, on the stack's own weights. (ONNX has LSTM and GRU operators, but
  `torch.export` unrolls `nn.LSTM` over the example's number of steps, so a graph with them
  would take one input length only);
- a backward direction on each sequence reversed within its own length, so padding never
  reaches a real step; each direction's final hidden state is the one at the sequence's last
  real step.

What the model computes on real steps is unchanged (the parity tests compare it with seqcli
to 1e-4). The final state is the hidden state alone (`state[0]`): every task here summarises
a sequence by it. `step`, `step_layers` and the other one-step methods, which exporters trace
as they are, are left alone.
"""

from __future__ import annotations

import copy
import types

import torch
from torch import Tensor, nn

from seqcli.nn.functional import reverse_padded
from seqcli.nn.recurrent import Recurrent


def traceable(model: nn.Module) -> nn.Module:
    """A copy of `model`, in eval mode, whose `Recurrent` stacks read whole sequences in a way
    exporters trace (see the module's docstring)."""
    copied = copy.deepcopy(model).eval()
    for module in copied.modules():
        if isinstance(module, Recurrent):
            module.units = nn.ModuleList(_unit(module, layer, d) for layer in range(module.num_layers)
                                         for d in range(module.num_directions))
            module.forward = types.MethodType(_forward, module)
    return copied


def _unit(rnn: Recurrent, layer: int, direction: int) -> nn.Module:
    """One layer and direction of a stack, with the cell contract's `project` and `step`."""
    if rnn.kernel is not None:
        return _FusedCell(rnn, layer, direction)
    return rnn.cells[layer * rnn.num_directions + direction]


class _FusedCell(nn.Module):
    """One layer and direction of a fused stack (nn.LSTM, nn.GRU, nn.RNN), its weights shared,
    as `project` (the input's share of every gate, for the whole sequence) and `step` (the
    recurrence, in PyTorch's own formulas)."""

    def __init__(self, rnn: Recurrent, layer: int, direction: int):
        super().__init__()
        suffix = f"l{layer}" + ("_reverse" if direction else "")
        self.kernel, self.num_states = rnn.kernel, rnn.num_states
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self, name, getattr(rnn.fused, f"{name}_{suffix}"))

    def project(self, x: Tensor) -> Tensor:
        return x @ self.weight_ih.t() + self.bias_ih  # (T, B, G)

    def step(self, u: Tensor, state: tuple) -> tuple:
        r = state[0] @ self.weight_hh.t() + self.bias_hh  # (B, G)
        if self.kernel == "lstm":
            i, f, g, o = (u + r).chunk(4, -1)
            c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        if self.kernel == "gru":
            (u_r, u_z, u_n), (r_r, r_z, r_n) = u.chunk(3, -1), r.chunk(3, -1)
            reset, update = torch.sigmoid(u_r + r_r), torch.sigmoid(u_z + r_z)
            new = torch.tanh(u_n + reset * r_n)
            return ((1 - update) * new + update * state[0],)
        return (torch.relu(u + r) if self.kernel == "rnn_relu" else torch.tanh(u + r),)


def _forward(self: Recurrent, x: Tensor, state=None, lengths: Tensor | None = None):
    """x (T, B, I), lengths (B,) -> outputs (T, B, D*H) (zero past each length) and the
    final hidden states ((L*D, B, H),), from a zero initial state."""
    T, B = x.shape[0], x.shape[1]
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
    inside = torch.arange(T, device=x.device)[:, None] < lengths[None, :]  # (T, B)
    last = (lengths - 1).clamp_min(0).view(1, B, 1).expand(1, B, self.hidden_size)
    finals = []
    for layer in range(self.num_layers):
        outs = []
        for d in range(self.num_directions):
            unit = self.units[layer * self.num_directions + d]
            seq = x if d == 0 else reverse_padded(x, lengths)
            out = _run(unit, seq, inside, B, self.hidden_size)
            finals.append(out.gather(0, last).squeeze(0))  # the state after the last real step
            outs.append(out if d == 0 else reverse_padded(out, lengths))
        x = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
    return x * inside.unsqueeze(-1).to(x.dtype), (torch.stack(finals),)


def _run(unit: nn.Module, x: Tensor, inside: Tensor, batch: int, hidden: int) -> Tensor:
    """One direction of one layer over x (T, B, I) -> outputs (T, B, H). Steps past a
    sequence's length may hold anything; they are never read."""
    from torch._higher_order_ops.scan import scan

    u = unit.project(x)  # the whole sequence's input projection at once
    initial = tuple(x.new_zeros(batch, hidden) for _ in range(unit.num_states))

    def body(state, inputs):
        u_t, m_t = inputs
        new = tuple(torch.where(m_t, n, o) for n, o in zip(unit.step(u_t, state), state))  # padding keeps the state
        return new, new[0].clone()

    _, out = scan(body, initial, (u, inside.unsqueeze(-1)))
    return out


#: the sizes of example inputs: distinct, so that no two dynamic axes look alike to the tracer
BATCH, STEPS, SOURCE = 2, 3, 5


def sequence_inputs(field) -> tuple[dict[str, Tensor], dict[str, dict[int, str]]]:
    """Example inputs of a graph that reads padded sequences of `field` (a `Vocab`: ids
    (T, B); a `Numeric`: values (T, B, D)) with their lengths (B,), and their dynamic axes."""
    from seqcli.vocab import Numeric

    lengths = torch.tensor([STEPS, STEPS - 1])
    if isinstance(field, Numeric):
        x = torch.zeros(STEPS, BATCH, field.dim)
    else:
        x = torch.ones(STEPS, BATCH, dtype=torch.long)
    return {"x": x, "lengths": lengths}, {"x": {0: "time", 1: "batch"}, "lengths": {0: "batch"}}


def states_of(rnn, batch: int = BATCH) -> list[Tensor]:
    """Zero initial states of a recurrent stack (`Recurrent`, or a language model's stack
    with a top layer of its own size), as its `step` takes them: each (layers, B, H)."""
    if hasattr(rnn, "lower"):
        return states_of(rnn.lower, batch) + states_of(rnn.top, batch)
    return [s.clone() for s in rnn.initial_state(batch, next(rnn.parameters()))]
