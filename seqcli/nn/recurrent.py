"""`Recurrent`: any cell, stacked, optionally bidirectional, with dropout and masking.

A cell whose `fused_kernel()` names a PyTorch kernel runs on nn.LSTM / nn.GRU / nn.RNN
(cuDNN on GPU); any other cell runs here: its input projection is hoisted out of the time
loop as one matrix product, and only `step` runs per time step (through torch.compile
with `train.compile`: `compile_steps`).
"""

from __future__ import annotations

import functools
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqcli.api import CellSpec
from seqcli.nn.functional import mask as step_mask, reverse_padded
from seqcli.nn.regularise import locked_dropout

FUSED = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}
# the fused kernels as functions of their weights: weight drop and locked dropout between
# layers run on them (the same kernels nn.LSTM/GRU/RNN call), never on a per-step loop
FUNCTIONAL = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}
FUSED_STEP = {
    "lstm": torch.lstm_cell,
    "gru": torch.gru_cell,
    "rnn_tanh": torch.rnn_tanh_cell,
    "rnn_relu": torch.rnn_relu_cell,
}

State = tuple[Tensor, ...]  # each (num_layers * num_directions, B, H), like nn.LSTM's


class Recurrent(nn.Module):
    """A stack of recurrent layers. Time-major: inputs are (T, B, input_size)."""

    compiled = False  # set by `compile_steps`: each cell's `step` runs through torch.compile

    def __init__(self, cell: CellSpec, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False, locked_dropout: float = 0.0,
                 weight_drop: float = 0.0):
        """`dropout` between layers draws a new mask at every step; `locked_dropout` one mask
        per sequence, the same at every step (variational dropout, Gal & Ghahramani, 2016);
        `weight_drop` drops recurrent (state-to-state) weights for each batch (DropConnect,
        Wan et al., 2013, as AWD-LSTM uses it). All three act only in training."""
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.dropout = dropout
        self.locked_dropout = locked_dropout if num_layers > 1 else 0.0
        self.weight_drop = weight_drop
        self.num_states = cell.cls.num_states
        self.cell_class = cell.cls
        self.kernel = cell.cls.fused_kernel(**cell.options)
        self.output_size = hidden_size * self.num_directions
        if self.kernel is not None:
            extra = {"nonlinearity": self.kernel[4:]} if self.kernel.startswith("rnn_") else {}
            self.fused = FUSED[self.kernel](input_size, hidden_size, num_layers,
                                            dropout=dropout if num_layers > 1 else 0.0,
                                            bidirectional=bidirectional, **extra)
        else:
            if weight_drop:
                from seqcli.errors import ConfigError

                raise ConfigError("weight_drop", f"needs a cell with a fused kernel (lstm, gru, rnn); "
                                                 f"{cell.cls.__name__} runs step by step")
            self.cells = nn.ModuleList(
                cell.cls(input_size if layer == 0 else self.output_size, hidden_size, **cell.options)
                for layer in range(num_layers)
                for _ in range(self.num_directions)
            )

    def roles(self):
        """(parameter, role, gates, forget_gate, unit) for each weight of the stack, as its
        cell class says (`Cell.role`); `unit` numbers the layer-and-direction it belongs to."""
        cls = self.cell_class
        if self.kernel is not None:  # nn.LSTM's names: weight_hh_l0_reverse is the cell's weight_hh
            for name, p in self.fused.named_parameters():
                base, _, unit = name.rpartition("_l")
                yield p, cls.role(base, p), cls.gates, cls.forget_gate, "l" + unit
            return
        for unit, cell in enumerate(self.cells):
            for name, p in cell.named_parameters():
                yield p, cls.role(name, p), cls.gates, cls.forget_gate, unit

    def initial_state(self, batch: int, like: Tensor) -> State:
        zeros = like.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)
        return tuple(zeros for _ in range(self.num_states))

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None):
        """x (T, B, I) -> outputs (T, B, D*H) and the final state. With `lengths` (B,), steps
        past each sequence's length are padding: they neither change the state nor output."""
        if state is None:
            state = self.initial_state(x.shape[1], x)
        if self.kernel is None:
            return self._loop(x, state, lengths)
        if self.training and (self.weight_drop or self.locked_dropout):
            return self._functional(x, state, lengths)
        hx = state if self.kernel == "lstm" else state[0]
        if lengths is None:
            out, hx = self.fused(x, hx)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
            out, hx = self.fused(packed, hx)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        return out, (tuple(hx) if self.kernel == "lstm" else (hx,))

    def _functional(self, x: Tensor, state: State, lengths: Tensor | None):
        """The fused kernel called with the weights as arguments: the recurrent weights
        dropped (weight drop), and layer by layer when a locked mask goes between them."""
        weights = [w for unit in self.fused.all_weights for w in unit]  # w_ih, w_hh, b_ih, b_hh per unit
        if self.weight_drop:
            weights = [F.dropout(w, self.weight_drop, True) if i % 4 == 1 else w for i, w in enumerate(weights)]
        D = self.num_directions
        per_layer = self.locked_dropout > 0
        groups = [(layer, layer + 1) for layer in range(self.num_layers)] if per_layer else [(0, self.num_layers)]
        finals: list[list[Tensor]] = [[] for _ in range(self.num_states)]
        between = 0.0 if per_layer else self.dropout
        for first, last in groups:
            if first > 0:
                x = locked_dropout(x, self.locked_dropout, True)
            hx = [s[first * D : last * D] for s in state]
            w = weights[first * D * 4 : last * D * 4]
            x, out_state = _call(self.kernel, x, hx, w, last - first, between, D == 2, lengths)
            for k in range(self.num_states):
                finals[k].append(out_state[k])
        return x, tuple(torch.cat(f) for f in finals)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step of a unidirectional stack: x (B, I) -> output (B, H), new state.
        Used for sampling, where calling the fused sequence kernel per step costs far more."""
        x, layers = self.step_layers(x, self.unstack(state))
        return x, self.stack(layers)

    def unstack(self, state: State) -> list[State]:
        """The stacked state -> one state tuple per layer (what `step_layers` carries)."""
        return [tuple(t[layer] for t in state) for layer in range(self.num_layers)]

    def stack(self, layers: list[State]) -> State:
        return tuple(torch.stack([s[k] for s in layers]) for k in range(self.num_states))

    def step_weights(self) -> list | None:
        """The fused kernel's weights per layer (w_ih, w_hh, b_ih, b_hh), for `step_layers`."""
        return self.fused.all_weights if self.kernel is not None else None

    def step_layers(self, x: Tensor, layers: list[State], weights: list | None = None) -> tuple[Tensor, list[State]]:
        """`step` with the state kept per layer, and the fused weights looked up once by the
        caller (`step_weights()`): a long generation loop then does only the arithmetic."""
        if self.num_directions != 1:
            raise ValueError("step() needs a unidirectional layer")
        new: list[State] = []
        if weights is None:
            weights = self.step_weights()
        for layer, s in enumerate(layers):
            if weights is None:
                cell = self.cells[layer]
                s = self.stepper(layer)(cell.project(x.unsqueeze(0)).squeeze(0), s)
            elif self.kernel == "lstm":
                s = tuple(torch.lstm_cell(x, s, *weights[layer]))
            else:
                s = (FUSED_STEP[self.kernel](x, s[0], *weights[layer]),)
            new.append(s)
            x = s[0]
            if self.training and self.dropout and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, new

    def _loop(self, x: Tensor, state: State, lengths: Tensor | None):
        mask = None if lengths is None else step_mask(lengths.to(x.device), x.shape[0]).unsqueeze(-1)  # (T, B, 1)
        finals: list[list[Tensor]] = [[] for _ in range(self.num_states)]
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                index = layer * self.num_directions + d
                s = tuple(t[index] for t in state)
                seq = x if d == 0 else reverse_padded(x, lengths)
                out, s = scan(self.cells[index], seq, s, mask, self.stepper(index))
                outs.append(out if d == 0 else reverse_padded(out, lengths))
                for k in range(self.num_states):
                    finals[k].append(s[k])
            x = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
            if self.training and layer < self.num_layers - 1:
                if self.locked_dropout:
                    x = locked_dropout(x, self.locked_dropout, True)
                elif self.dropout:
                    x = F.dropout(x, self.dropout, True)
        return x, tuple(torch.stack(f) for f in finals)

    def stepper(self, index: int):
        """The `step` of cell `index`: the cell's own, or its compiled form (`compile_steps`)."""
        cell = self.cells[index]
        if not self.compiled:
            return cell.step
        step = _COMPILED.get(type(cell))
        if step is None:
            step = _COMPILED[type(cell)] = CompiledStep(type(cell))
        return functools.partial(step, cell)


# each cell class's compiled step, shared by its cells (their weights are the graph's inputs)
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_steps(model: nn.Module) -> int:
    """`train.compile`: every step-by-step cell of `model` runs its `step` through
    torch.compile (one graph per step, its element-wise work fused). Cells on a fused kernel
    are left as they are. Returns how many cells will be compiled."""
    count = 0
    for module in model.modules():
        if isinstance(module, Recurrent) and module.kernel is None:
            module.compiled = True
            count += len(module.cells)
    return count


class CompiledStep:
    """A cell class's `step` through torch.compile. Its first call says, in one line, when
    the compiler cannot work on this machine (no C++ compiler, an unsupported platform); an
    error of the cell's own is raised as the cell raises it."""

    def __init__(self, cls):
        import torch._dynamo.config as dynamo

        # one graph for each of: training and evaluation, the first step (a state without
        # gradient) and the rest, a fixed and then a varying batch size, for each cell class
        limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
        setattr(dynamo, limit, max(getattr(dynamo, limit), 64))
        self.cls, self.fn, self.checked = cls, torch.compile(cls.step), False

    def __call__(self, cell, u: Tensor, state: State) -> State:
        if self.checked:
            return self.fn(cell, u, state)
        try:
            out = self.fn(cell, u, state)
        except Exception as exc:  # noqa: BLE001 - told apart below: the cell's error or the compiler's
            cell.step(u, state)  # the cell's own error, raised as the cell raises it
            from seqcli.errors import ConfigError

            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ConfigError("train.compile", f"torch.compile cannot compile {self.cls.__name__}.step here "
                                               f"({type(exc).__name__}: {first}); set train.compile=false") from None
        self.checked = True
        return out


def _call(kernel: str, x: Tensor, hx: list[Tensor], weights: list[Tensor], num_layers: int, dropout: float,
          bidirectional: bool, lengths: Tensor | None) -> tuple[Tensor, list[Tensor]]:
    """One call of a fused kernel function (torch.lstm, ...), packed when there are lengths."""
    run, lstm = FUNCTIONAL[kernel], kernel == "lstm"
    if lengths is None:
        result = run(x, hx if lstm else hx[0], weights, True, num_layers, dropout, True, bidirectional, False)
        return result[0], list(result[1:])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    order, back = packed.sorted_indices, packed.unsorted_indices
    hx = [h.index_select(1, order) for h in hx]
    result = run(packed.data, packed.batch_sizes, hx if lstm else hx[0], weights, True, num_layers, dropout, True,
                 bidirectional)
    out = nn.utils.rnn.PackedSequence(result[0], packed.batch_sizes, order, back)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
    return out, [h.index_select(1, back) for h in result[1:]]


def scan(cell, x: Tensor, state: State, mask: Tensor | None, step=None):
    """Run one cell over x (T, B, I); returns outputs (T, B, H) and the final state. `step`:
    what runs each time step (the cell's `step`, or its compiled form)."""
    step = step or cell.step
    u = cell.project(x)  # the whole sequence's input projection at once: (T, B, G)
    whole = cell.scan(u, state, mask)
    if whole is not NotImplemented:
        out, state = whole
        return (out if mask is None else out * mask), tuple(state)
    outs = []
    if mask is None:
        for u_t in u.unbind(0):  # unbind, not u[t]: indexing slows every step's backward
            state = step(u_t, state)
            outs.append(state[0])
        return torch.stack(outs), state
    for u_t, m_t in zip(u.unbind(0), mask.unbind(0)):
        new = step(u_t, state)
        state = tuple(torch.where(m_t, n, o) for n, o in zip(new, state))
        outs.append(state[0])
    return torch.stack(outs) * mask, state
