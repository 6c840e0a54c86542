"""Every built-in cell: the fused kernel, the generic step loop and step() agree."""

import pytest
import torch

from seqcli import registry
from seqcli.api import CellSpec
from seqcli.nn.recurrent import Recurrent

CASES = [("lstm", {}), ("gru", {}), ("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"})]


def unfused(cls):
    """The same cell with its fused kernel switched off: seqcli's generic step loop runs it."""
    return type(f"Loop{cls.__name__}", (cls,), {"fused_kernel": classmethod(lambda c, **o: None)})


def pair(name, options, layers, bidirectional, I=5, H=7):
    cls = registry.load("cell", name)
    torch.manual_seed(0)
    fused = Recurrent(CellSpec(cls, options), I, H, layers, bidirectional=bidirectional)
    loop = Recurrent(CellSpec(unfused(cls), options), I, H, layers, bidirectional=bidirectional)
    assert fused.kernel is not None and loop.kernel is None
    with torch.no_grad():  # give the loop the fused layer's weights
        for layer in range(layers):
            for d in range(2 if bidirectional else 1):
                cell = loop.cells[layer * (2 if bidirectional else 1) + d]
                for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, p).copy_(getattr(fused.fused, f"{p}_l{layer}{'_reverse' if d else ''}"))
    return fused, loop


@pytest.mark.parametrize("name,options", CASES)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_generic_loop_matches_fused_kernel(name, options, layers, bidirectional):
    fused, loop = pair(name, options, layers, bidirectional)
    x = torch.randn(6, 3, 5)
    lengths = torch.tensor([6, 2, 4])
    for lens in (None, lengths):
        out_f, state_f = fused(x, lengths=lens)
        out_l, state_l = loop(x, lengths=lens)
        torch.testing.assert_close(out_l, out_f, atol=1e-5, rtol=1e-5)
        for a, b in zip(state_l, state_f):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,options", CASES)
def test_gradients_match(name, options):
    fused, loop = pair(name, options, 2, False)
    x = torch.randn(5, 2, 5)
    fused(x)[0].sum().backward()
    loop(x)[0].sum().backward()
    torch.testing.assert_close(loop.cells[1].weight_hh.grad, fused.fused.weight_hh_l1.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,options", CASES)
@pytest.mark.parametrize("use_loop", [False, True])
def test_step_carries_state_like_forward(name, options, use_loop):
    layer = pair(name, options, 2, False)[use_loop].eval()
    x = torch.randn(6, 3, 5)
    out, final = layer(x)
    state = layer.initial_state(3, x)
    for t in range(6):
        h, state = layer.step(x[t], state)
        torch.testing.assert_close(h, out[t], atol=1e-5, rtol=1e-5)
    for a, b in zip(state, final):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("use_loop", [False, True])
def test_padding_does_not_change_results(use_loop):
    layer = pair("lstm", {}, 2, True)[use_loop].eval()
    seqs = [torch.randn(n, 5) for n in (4, 7, 2)]
    padded = torch.nn.utils.rnn.pad_sequence(seqs)  # (7, 3, 5)
    out, (h, _) = layer(padded, lengths=torch.tensor([4, 7, 2]))
    for b, seq in enumerate(seqs):
        alone, (h1, _) = layer(seq.unsqueeze(1))
        torch.testing.assert_close(out[: len(seq), b], alone[:, 0], atol=1e-5, rtol=1e-5)
        assert torch.all(out[len(seq):, b] == 0)
        torch.testing.assert_close(h[:, b], h1[:, 0], atol=1e-5, rtol=1e-5)
