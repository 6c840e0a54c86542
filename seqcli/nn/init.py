"""`model.init`: the weight initialisation schemes a recipe chooses.

Each scheme is one callable: its signature is its recipe keys, its body does the work on a
built model (given None, it has nothing to do: what validating a recipe does). What a recurrent parameter is (recurrent, input, bias, or the cell's own) comes
from its cell class (`Cell.role`), per parameter; the model's other parameters are matrices
(initialised as inputs), biases (by name) or left as their layer made them.

In any scheme, `forget_bias` sets the LSTM forget gate's bias (Jozefowicz et al., 2015 use
1), and `embedding_scale` draws every embedding (and an output layer tied to it) from
U(-s, s), as PyTorch's word_language_model and AWD-LSTM do with 0.1.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from seqcli.errors import ConfigError
from seqcli.schema import Range

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d)
ForgetBias = Annotated[float, Range(-100, 100)] | None
Gain = Annotated[float, Range(0, 100, lo_open=True)]
Scale = Annotated[float, Range(0, 100, lo_open=True)]


def default(model: nn.Module, forget_bias: ForgetBias = None, embedding_scale: Scale | None = None) -> None:
    """Each layer's own initialisation (recurrent layers: PyTorch's U(-1/sqrt(H), 1/sqrt(H));
    embeddings N(0, 1))."""
    if model is not None:
        _finish(model, forget_bias, embedding_scale)


def uniform(model: nn.Module, scale: Scale = 0.1, forget_bias: ForgetBias = None,
            embedding_scale: Scale | None = None) -> None:
    """Every parameter drawn from U(-scale, scale), as in Zaremba et al. (2014)."""
    if model is None:
        return
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-scale, scale)
    _finish(model, forget_bias, embedding_scale)


def xavier(model: nn.Module, gain: Gain = 1.0, forget_bias: ForgetBias = None,
           embedding_scale: Scale | None = None) -> None:
    """Weight matrices Xavier-uniform (Glorot & Bengio, 2010), each gate's block on its own;
    biases zero."""
    if model is None:
        return
    _matrices(model, gain, orthogonal_recurrent=False)
    _finish(model, forget_bias, embedding_scale)


def orthogonal(model: nn.Module, gain: Gain = 1.0, forget_bias: ForgetBias = None,
               embedding_scale: Scale | None = None) -> None:
    """Recurrent (state-to-state) weights orthogonal, each gate's block on its own (Saxe et
    al., 2014); the other weight matrices Xavier-uniform; biases zero."""
    if model is None:
        return
    _matrices(model, gain, orthogonal_recurrent=True)
    _finish(model, forget_bias, embedding_scale)


INITS = {"default": default, "uniform": uniform, "xavier": xavier, "orthogonal": orthogonal}


def initialise(model: nn.Module, spec: dict | None) -> None:
    """Apply a checked `model.init` spec ({name, **keys}) to a built model."""
    if spec:
        INITS[spec["name"]](model, **{k: v for k, v in spec.items() if k != "name"})


def roles(model: nn.Module) -> dict[int, tuple[str, int]]:
    """id(parameter) -> (role, gates) for every parameter of the model's recurrent stacks."""
    from seqcli.nn.recurrent import Recurrent

    out = {}
    for module in model.modules():
        if isinstance(module, Recurrent):
            for p, role, gates, _, _ in module.roles():
                out[id(p)] = (role, gates)
    return out


def _matrices(model: nn.Module, gain: float, orthogonal_recurrent: bool) -> None:
    known = roles(model)
    normed = {id(p) for m in model.modules() if isinstance(m, NORMS) for p in m.parameters()}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if id(p) in normed:
                continue
            role, gates = known.get(id(p), (_role_of(name.rpartition(".")[2], p), 1))
            if role == "bias":
                p.zero_()
            elif role in ("input", "recurrent"):
                for block in p.view(-1, p.shape[-1]).chunk(gates, 0):
                    if role == "recurrent" and orthogonal_recurrent:
                        nn.init.orthogonal_(block, gain)
                    else:
                        nn.init.xavier_uniform_(block, gain)


def _role_of(name: str, p: torch.Tensor) -> str:
    """A parameter outside a recurrent stack: a matrix, a bias, or something its layer owns."""
    if p.dim() > 1:
        return "input"
    return "bias" if name.startswith("bias") else "own"


def _finish(model: nn.Module, forget_bias: float | None, embedding_scale: float | None) -> None:
    from seqcli.nn.recurrent import Recurrent

    with torch.no_grad():
        if embedding_scale is not None:
            embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
            if not embeddings:
                raise ConfigError("embedding_scale", "this model has no embedding")
            for m in embeddings:
                m.weight.uniform_(-embedding_scale, embedding_scale)
        if forget_bias is None:
            return
        forget: dict = {}  # (stack, unit) -> [(bias, gates, forget gate)]
        for module in model.modules():
            if isinstance(module, Recurrent):
                for p, role, gates, gate, unit in module.roles():
                    if role == "bias" and gate is not None:
                        forget.setdefault((id(module), unit), []).append((p, gates, gate))
        if not forget:
            raise ConfigError("forget_bias", "no recurrent layer of this model has a forget gate (an LSTM setting)")
        for biases in forget.values():  # a layer's bias vectors share the value (b_ih + b_hh = value)
            for p, gates, gate in biases:
                p.view(gates, -1)[gate].fill_(forget_bias / len(biases))
