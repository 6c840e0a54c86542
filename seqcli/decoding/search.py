"""Writing output sequences with a decoder: greedy, sampling, and batched beam search.

A decoder here is anything with `step(tokens (B,), state) -> (logits (B, V), state, weights)`
whose state has `select(index)` (see seqcli.nn.decoder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from seqcli.decoding.sampling import next_token


@dataclass
class Hypothesis:
    tokens: list[int]  # without <bos> and <eos>
    score: float  # log-probability, divided by the length penalty
    logprob: float
    attention: list[list[float]] | None = field(default=None, repr=False)  # (steps, source length)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha; alpha 0 ranks by raw log-probability."""
    return ((5 + length) / 6) ** alpha


def sample(decoder, state, batch: int, bos: int, eos: int, max_length: int, temperature: float = 0.0,
           top_k: int | None = None, top_p: float | None = None, generator=None) -> list[Hypothesis]:
    """One sequence per batch row; temperature 0 is greedy decoding."""
    device = state.rnn[0].device
    tokens = torch.full((batch,), bos, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    logprob = torch.zeros(batch, device=device)
    steps, weights = [], []
    for _ in range(max_length):
        logits, state, w = decoder.step(tokens, state)
        chosen = next_token(logits, temperature, top_k, top_p, generator)
        chosen = torch.where(finished, torch.full_like(chosen, eos), chosen)
        logprob += torch.where(finished, 0.0, logits.log_softmax(-1).gather(1, chosen[:, None]).squeeze(1))
        steps.append(chosen)
        weights.append(w)
        finished |= chosen == eos
        if finished.all():
            break
        tokens = chosen
    out = torch.stack(steps, 1).tolist()  # (B, steps)
    hyps = []
    for b, seq in enumerate(out):
        n = seq.index(eos) if eos in seq else len(seq)
        attn = [w[b].tolist() for w in weights[: n + 1]] if weights[0] is not None else None
        hyps.append(Hypothesis(seq[:n], logprob[b].item(), logprob[b].item(), attn))
    return hyps


def beam_search(decoder, state, batch: int, bos: int, eos: int, max_length: int, beam_size: int,
                n_best: int = 1, alpha: float = 0.0) -> list[list[Hypothesis]]:
    """The `n_best` best sequences per batch row, by log-probability / length_penalty.

    All rows and beams advance together as one batch of batch * beam_size. A row stops when
    its n_best-th finished score beats anything its live beams could still reach."""
    K = beam_size
    device = state.rnn[0].device
    state = state.select(torch.arange(batch, device=device).repeat_interleave(K))
    scores = torch.full((batch, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one
    history = torch.empty(batch, K, 0, dtype=torch.long, device=device)
    tokens = torch.full((batch * K,), bos, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    for t in range(max_length):
        logits, state, _ = decoder.step(tokens, state)
        V = logits.shape[-1]
        candidates = scores.unsqueeze(-1) + logits.log_softmax(-1).view(batch, K, V)  # (B, K, V)
        top_scores, top_index = candidates.view(batch, -1).topk(min(2 * K, K * V), dim=-1)
        top_scores, top_index = top_scores.tolist(), top_index.tolist()
        new_scores = torch.full((batch, K), float("-inf"), device=device)
        new_beam = torch.zeros(batch, K, dtype=torch.long)
        new_token = torch.full((batch, K), eos, dtype=torch.long)
        for b in range(batch):
            if done[b]:
                continue
            k = 0
            for s, index in zip(top_scores[b], top_index[b]):
                if s == float("-inf") or k == K:
                    break
                beam, token = divmod(index, V)
                if token == eos:
                    seq = history[b, beam].tolist()
                    finished[b].append(Hypothesis(seq, s / length_penalty(len(seq) + 1, alpha), s))
                else:
                    new_scores[b, k], new_beam[b, k], new_token[b, k] = s, beam, token
                    k += 1
            best_alive = new_scores[b].max().item()
            ranked = sorted(h.score for h in finished[b])[::-1]
            # live beams only lose log-probability; the longest length gives the kindest penalty
            if len(ranked) >= n_best and (best_alive == float("-inf") or
                                          ranked[n_best - 1] >= best_alive / length_penalty(max_length + 1, alpha)):
                done[b] = True
                new_scores[b] = float("-inf")
        if all(done):
            break
        flat = (torch.arange(batch)[:, None] * K + new_beam).view(-1).to(device)
        state = state.select(flat)
        kept = history.reshape(batch * K, history.shape[-1])[flat].view(batch, K, -1)
        history = torch.cat([kept, new_token.to(device)[..., None]], -1)
        scores = new_scores
        tokens = new_token.view(-1).to(device)
    for b in range(batch):
        if not done[b]:  # out of steps: live beams count as they are
            for k in range(K):
                s = scores[b, k].item()
                if s > float("-inf"):
                    seq = history[b, k].tolist()
                    finished[b].append(Hypothesis(seq, s / length_penalty(len(seq), alpha), s))
        finished[b].sort(key=lambda h: -h.score)
        finished[b] = finished[b][:n_best]
    return finished
