"""Contract checks for plugin authors, in the spirit of scikit-learn's check_estimator.

    from seqcli.testing import check_cell
    check_cell(MyCell)                      # raises AssertionError naming the failed check
    check_cell(MyCell, {"option": 3})       # with recipe options

Every built-in cell passes these (tests/test_contracts.py).
"""

from __future__ import annotations

import io

import torch

from seqcli.api import Cell, CellSpec
from seqcli.cells.layer import Recurrent

T, B, I, H = 6, 3, 5, 7


def _close(a, b, what: str, name: str, atol: float = 1e-5) -> None:
    if not torch.allclose(a, b, atol=atol, rtol=1e-4):
        raise AssertionError(f"check_cell({name}): {what} (largest difference {(a - b).abs().max().item():.3g})")


def check_cell(cls: type, options: dict | None = None) -> list[str]:
    """Check a Cell class against the contract; returns the names of the checks it passed."""
    options = dict(options or {})
    name = getattr(cls, "__name__", str(cls))
    passed = []

    def ok(check: str) -> None:
        passed.append(check)

    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        raise AssertionError(f"check_cell({name}): must be a subclass of seqcli.api.Cell")
    torch.manual_seed(0)
    cell = cls(I, H, **options)
    x = torch.randn(T, B, I)
    u = cell.project(x)
    if u.dim() != 3 or u.shape[:2] != (T, B):
        raise AssertionError(f"check_cell({name}): project() must map (T, B, input_size) to (T, B, G), got {tuple(u.shape)}")
    state = tuple(torch.zeros(B, H) for _ in range(cls.num_states))
    new = cell.step(u[0], state)
    if not isinstance(new, tuple) or len(new) != cls.num_states or any(s.shape != (B, H) for s in new):
        raise AssertionError(f"check_cell({name}): step() must return a tuple of num_states={cls.num_states} "
                             f"tensors of shape (batch, hidden_size)")
    ok("shapes")

    # the framework's generic path: the cell as a plugin runs, never a fused kernel
    plugin = type(f"{name}AsPlugin", (cls,), {"fused_kernel": classmethod(lambda c, **o: None)})
    torch.manual_seed(0)
    layer = Recurrent(CellSpec(plugin, options), I, H, num_layers=2, bidirectional=True).eval()
    out, final = layer(x)
    if out.shape != (T, B, 2 * H) or any(s.shape != (4, B, H) for s in final):
        raise AssertionError(f"check_cell({name}): a stacked bidirectional layer gave outputs {tuple(out.shape)}")
    ok("stacking and bidirection")

    for b in range(B):
        alone, _ = layer(x[:, b : b + 1])
        _close(alone[:, 0], out[:, b], "an example's outputs depend on the other examples in its batch", name)
    ok("batch independence")

    lengths = torch.tensor([T, 2, 4])
    padded, padded_final = layer(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_final = layer(x[:n, b : b + 1])
        _close(alone[:, 0], padded[:n, b], "padding changes the outputs of real steps", name)
        if padded[n:, b].abs().sum() > 0:
            raise AssertionError(f"check_cell({name}): outputs at padded steps must be zero")
        for s_alone, s_padded in zip(alone_final, padded_final):
            _close(s_alone[:, 0], s_padded[:, b], "padding changes the final state", name)
    ok("masking")

    forward = Recurrent(CellSpec(plugin, options), I, H, num_layers=2).eval()
    seq, seq_final = forward(x)
    state = forward.initial_state(B, x)
    for t in range(T):
        h, state = forward.step(x[t], state)
        _close(h, seq[t], f"step-by-step output at step {t} differs from the whole-sequence run", name)
    for a, b in zip(state, seq_final):
        _close(a, b, "the state carried step by step differs from the whole-sequence final state", name)
    half, half_state = forward(x[: T // 2])
    rest, _ = forward(x[T // 2 :], half_state)
    _close(torch.cat([half, rest]), seq, "a sequence run in two halves, carrying the state, differs", name)
    ok("state handling")

    if cls.scan is not Cell.scan:  # a parallel training path must agree with the step loop
        class Stepped(plugin):
            def scan(self, u, state, mask):
                return NotImplemented

        torch.manual_seed(0)
        stepped = Recurrent(CellSpec(Stepped, options), I, H, num_layers=2, bidirectional=True).eval()
        stepped.load_state_dict(layer.state_dict())
        _close(stepped(x, lengths=lengths)[0], padded, "scan() and the step loop disagree", name)
        ok("scan matches steps")

    layer.train()
    layer.zero_grad()
    layer(x)[0].pow(2).sum().backward()
    for pname, p in layer.named_parameters():
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0:
            raise AssertionError(f"check_cell({name}): no finite, non-zero gradient reaches parameter {pname}")
    layer.eval()
    ok("gradient flow")

    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    restored = Recurrent(CellSpec(plugin, options), I, H, num_layers=2, bidirectional=True).eval()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    _close(restored(x)[0], out, "a model restored from its state_dict gives different outputs", name)
    ok("serialisation")

    kernel = cls.fused_kernel(**options)
    if kernel is not None:
        fused = Recurrent(CellSpec(cls, options), I, H, num_layers=2, bidirectional=True).eval()
        with torch.no_grad():
            for index, c in enumerate(layer.cells):
                layer_no, direction = divmod(index, 2)
                for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(fused.fused, f"{p}_l{layer_no}{'_reverse' if direction else ''}").copy_(getattr(c, p))
        _close(fused(x, lengths=lengths)[0], padded, f"the fused '{kernel}' kernel and step() disagree", name)
        ok("fused kernel matches steps")
    return passed
