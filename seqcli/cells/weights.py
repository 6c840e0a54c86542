"""The built-in cells' weights, as PyTorch's fused kernels lay them out."""

import math

import torch


def add_weights(cell: torch.nn.Module, gates: int, input_size: int, hidden_size: int) -> None:
    """weight_ih, weight_hh, bias_ih, bias_hh for `gates` stacked gates, laid out as
    PyTorch's fused kernels lay them out, with their initialisation: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    for name, shape in (("weight_ih", (gates * hidden_size, input_size)), ("weight_hh", (gates * hidden_size, hidden_size)),
                        ("bias_ih", (gates * hidden_size,)), ("bias_hh", (gates * hidden_size,))):
        cell.register_parameter(name, torch.nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))
