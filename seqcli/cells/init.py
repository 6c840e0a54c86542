"""Weight initialisation: the built-in cells' own (`add_weights`) and the schemes a recipe
chooses with `model.init` (their keys are in `seqcli.config.INITS`)."""

import math

import torch
from torch import nn

from seqcli.errors import ConfigError

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d)


def add_weights(cell: torch.nn.Module, gates: int, input_size: int, hidden_size: int) -> None:
    """weight_ih, weight_hh, bias_ih, bias_hh for `gates` stacked gates, laid out as
    PyTorch's fused kernels lay them out, with their initialisation: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    for name, shape in (("weight_ih", (gates * hidden_size, input_size)), ("weight_hh", (gates * hidden_size, hidden_size)),
                        ("bias_ih", (gates * hidden_size,)), ("bias_hh", (gates * hidden_size,))):
        cell.register_parameter(name, torch.nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))


def initialise(model: nn.Module, spec: dict | None) -> None:
    """Apply `model.init` to a built model: `spec` is {name, **options} (see seqcli.config)."""
    from seqcli.cells.layer import Recurrent

    if not spec:
        return
    name = spec["name"]
    roles = {}  # id(parameter) -> (role, gates)
    forget: dict = {}  # (layer, unit) -> [(bias, gates, forget gate)]
    for module in model.modules():
        if isinstance(module, Recurrent):
            for p, role, gates, gate, unit in module.roles():
                roles[id(p)] = (role, gates)
                if role == "bias" and gate is not None:
                    forget.setdefault((id(module), unit), []).append((p, gates, gate))
    normed = {id(p) for m in model.modules() if isinstance(m, NORMS) for p in m.parameters()}
    with torch.no_grad():
        if name == "uniform":
            for p in model.parameters():
                p.uniform_(-spec["scale"], spec["scale"])
        elif name in ("xavier", "orthogonal"):
            for p in model.parameters():
                if id(p) in normed:
                    continue
                role, gates = roles.get(id(p), ("input" if p.dim() > 1 else "bias", 1))
                if role == "bias":
                    p.zero_()
                    continue
                for block in p.view(-1, p.shape[-1]).chunk(gates, 0):
                    if role == "recurrent" and name == "orthogonal":
                        nn.init.orthogonal_(block, spec["gain"])
                    else:
                        nn.init.xavier_uniform_(block, spec["gain"])
        if spec.get("embedding_scale") is not None:
            embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
            if not embeddings:
                raise ConfigError("embedding_scale", "this model has no embedding")
            for m in embeddings:
                m.weight.uniform_(-spec["embedding_scale"], spec["embedding_scale"])
        value = spec.get("forget_bias")
        if value is not None:
            if not forget:
                raise ConfigError("forget_bias", "no recurrent layer of this model has a forget gate (an LSTM setting)")
            for biases in forget.values():  # a layer's bias vectors share the value (b_ih + b_hh = value)
                for p, gates, gate in biases:
                    p.view(gates, -1)[gate].fill_(value / len(biases))
