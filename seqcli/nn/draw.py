"""DRAW's differentiable attention (Gregor et al., 2015): an N x N grid of Gaussian filters,
placed by five numbers a network emits, that reads a patch from an image or writes one onto
a canvas. Every step of the placement is differentiable, so where to look is learnt by
backpropagation with the rest."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Window:
    """Where a glimpse falls, in pixels: centre (gx, gy), grid spacing delta, filter width
    sigma, and intensity gamma; each (B,)."""

    gx: Tensor
    gy: Tensor
    delta: Tensor
    sigma: Tensor
    gamma: Tensor
    raw: Tensor | None = None  # (B, 5): the network's numbers before scaling, a compact "where"

    def as_rows(self) -> list[dict]:
        names = ("gx", "gy", "delta", "sigma", "gamma")
        columns = [getattr(self, n).detach().cpu().tolist() for n in names]
        return [{n: round(v, 4) for n, v in zip(names, values)} for values in zip(*columns)]


class Locator(nn.Module):
    """A hidden state (B, H) -> a Window over an image of `height` x `width` pixels, with an
    N x N grid. Starts centred, with the grid spanning the whole image."""

    def __init__(self, hidden_size: int, height: int, width: int, grid: int):
        super().__init__()
        self.height, self.width, self.grid = height, width, grid
        self.linear = nn.Linear(hidden_size, 5)
        with torch.no_grad():
            self.linear.weight.mul_(0.1)
            self.linear.bias.zero_()

    def forward(self, h: Tensor) -> Window:
        raw = self.linear(h)
        gx, gy, log_delta, log_var, log_gamma = raw.unbind(-1)
        span = (max(self.height, self.width) - 1) / max(self.grid - 1, 1)
        return Window(gx=(self.width - 1) * (gx + 1) / 2, gy=(self.height - 1) * (gy + 1) / 2,
                      delta=span * log_delta.exp(), sigma=(0.5 * log_var).exp(), gamma=log_gamma.exp(), raw=raw)


def filters(window: Window, grid: int, size: int, centre: Tensor) -> Tensor:
    """(B, grid, size): row i is a Gaussian over the `size` pixels around the i-th grid point."""
    offsets = torch.arange(grid, device=centre.device, dtype=centre.dtype) - (grid - 1) / 2  # (grid,)
    mu = centre[:, None] + offsets[None, :] * window.delta[:, None]  # (B, grid)
    pixels = torch.arange(size, device=centre.device, dtype=centre.dtype)
    f = torch.exp(-((pixels[None, None, :] - mu[:, :, None]) ** 2) / (2 * window.sigma[:, None, None] ** 2))
    return f / f.sum(-1, keepdim=True).clamp_min(1e-8)


def read(image: Tensor, window: Window, grid: int) -> Tensor:
    """image (B, H, W) -> the glimpse (B, grid, grid): gamma * Fy image Fx^T."""
    fy = filters(window, grid, image.shape[1], window.gy)
    fx = filters(window, grid, image.shape[2], window.gx)
    return window.gamma[:, None, None] * (fy @ image @ fx.transpose(1, 2))


def write(patch: Tensor, window: Window, height: int, width: int) -> Tensor:
    """patch (B, grid, grid) -> what it adds to a canvas (B, H, W): Fy^T patch Fx / gamma."""
    grid = patch.shape[1]
    fy = filters(window, grid, height, window.gy)
    fx = filters(window, grid, width, window.gx)
    return (fy.transpose(1, 2) @ patch @ fx) / window.gamma[:, None, None]
