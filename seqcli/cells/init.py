import math

import torch


def uniform_init(module: torch.nn.Module, hidden_size: int) -> None:
    """PyTorch's initialisation for recurrent layers: U(-1/sqrt(H), 1/sqrt(H)) for every weight."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-bound, bound)
