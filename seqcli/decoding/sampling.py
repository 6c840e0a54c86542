"""Choose the next token from logits: greedy (temperature 0), temperature, top-k and top-p."""

from __future__ import annotations

import torch
from torch import Tensor


def next_token(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """logits (B, V) -> token ids (B,)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the ones ranked above it already hold top_p of the mass
        drop = probs.cumsum(-1) - probs > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter_(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    try:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    except RuntimeError:  # NaN or infinite scores: checked only here, off the hot path
        if torch.isfinite(probs).all():
            raise
        from seqcli.errors import TrainingError

        raise TrainingError("the model's scores are NaN or infinite (its weights diverged); it cannot be "
                            "sampled") from None
