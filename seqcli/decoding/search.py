"""Writing output sequences with a decoder: greedy, sampling, and batched beam search.

A decoder here is anything with `step(tokens (B,), state) -> (logits (B, V), state, weights)`
whose state has `select(index)` (see seqcli.nn.decoder), and optionally `select_carried(index)`
for a reordering among rows that share everything but what each step changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from seqcli.decoding.sampling import next_token
from seqcli.errors import ConfigError


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
    """One sequence per batch row; temperature 0 is greedy decoding.

    Greedy, a row that has written <eos> leaves the batch once a quarter of the rows still in
    it have (a batch of inputs of mixed lengths then costs what its outputs' lengths add up
    to, not its longest output times its size). Sampling keeps every row to the end, so the
    draws a seed gives do not depend on when other rows finish."""
    device = state.rnn[0].device
    tokens = torch.full((batch,), bos, dtype=torch.long, device=device)
    rows = torch.arange(batch, device=device)  # the input row of each row still in the batch
    finished = torch.zeros(batch, dtype=torch.bool, device=device)  # of the rows in the batch
    written = torch.full((batch, max_length), eos, dtype=torch.long, device=device)
    logprob = torch.zeros(batch, device=device)
    attention = []  # (rows, weights (B', S)) per step
    shrinks = temperature == 0
    steps = 0
    for t in range(max_length):
        logits, state, w = decoder.step(tokens, state)
        chosen = next_token(logits, temperature, top_k, top_p, generator)
        chosen = torch.where(finished, torch.full_like(chosen, eos), chosen)
        gained = torch.where(finished, 0.0, logits.float().log_softmax(-1).gather(1, chosen[:, None]).squeeze(1))
        logprob.index_add_(0, rows, gained)
        written[rows, t] = chosen
        if w is not None:
            attention.append((rows, w))
        steps = t + 1
        finished = finished | (chosen == eos)
        done = int(finished.sum())
        if done == len(rows):
            break
        if shrinks and 4 * done >= len(rows):
            keep = (~finished).nonzero().squeeze(1)
            state, rows, chosen = state.select(keep), rows[keep], chosen[keep]
            finished = finished[keep]
        tokens = chosen
    out = written[:, :steps].tolist()  # (B, steps)
    maps = None
    if attention:  # each row's weights at every step it took part in: (B, steps, S)
        maps = torch.zeros(batch, steps, attention[0][1].shape[-1], device=device)
        for t, (at, w) in enumerate(attention):
            maps[at, t] = w.float()
    hyps = []
    for b, seq in enumerate(out):
        n = seq.index(eos) if eos in seq else len(seq)
        attn = maps[b, : n + 1].tolist() if maps is not None else None
        hyps.append(Hypothesis(seq[:n], logprob[b].item(), logprob[b].item(), attn))
    return hyps


def _coverage(received: Tensor, real: Tensor, beta: float) -> float:
    """GNMT's coverage penalty of one hypothesis: beta * sum log(min(received, 1)) over the
    real source positions (never below log 1e-10 for one that got no attention at all)."""
    return beta * received[real].clamp(1e-10, 1.0).log().sum().item()


def beam_search(decoder, state, batch: int, bos: int, eos: int, max_length: int, beam_size: int,
                n_best: int = 1, alpha: float = 0.0, beta: float = 0.0) -> list[list[Hypothesis]]:
    """The `n_best` best sequences per batch row, by log-probability / length_penalty, plus
    with `beta` > 0 GNMT's coverage penalty (Wu et al., 2016; OpenNMT's `wu`): beta times the
    sum over the source positions of log(min(attention they received, 1)), which is 0 for a
    hypothesis that attended to every position at least once in all and lower the more of the
    source it left unread (the decoder must attend: its `step` gives weights).

    All rows and beams advance together as one batch of rows * beam_size, chosen with tensor
    operations (only finished hypotheses reach Python). A row stops when its n_best-th
    finished score beats anything its live beams could still reach, and leaves the batch:
    later steps run only the rows still searching."""
    K = beam_size
    inf = float("-inf")
    device = state.rnn[0].device
    state = state.select(torch.arange(batch, device=device).repeat_interleave(K))
    scores = torch.full((batch, K), inf, device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one
    history = torch.empty(batch, K, 0, dtype=torch.long, device=device)
    tokens = torch.full((batch * K,), bos, dtype=torch.long, device=device)
    rows = list(range(batch))  # the input row of each row still searching
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    bar = [inf] * batch  # each input row's n_best-th best finished score
    kindest = length_penalty(max_length + 1, alpha)  # live beams only lose log-probability
    coverage = None  # (A, K, S): the attention each live beam has given each source position
    for _ in range(max_length):
        logits, state, weights = decoder.step(tokens, state)
        A, V = scores.shape[0], logits.shape[-1]
        if beta:
            if weights is None:
                raise ConfigError("coverage_penalty", "needs a model that attends to its source (model.attention)")
            coverage = weights.float().view(A, K, -1) + (coverage if coverage is not None else 0.0)
            source = state.mask.t().reshape(A, K, -1)  # (A, K, S) True on the source's own positions
        candidates = scores.unsqueeze(-1) + logits.log_softmax(-1).view(A, K, V)  # (A, K, V)
        top_scores, top_index = candidates.view(A, -1).topk(min(2 * K, K * V), dim=-1)  # sorted, best first
        beam, token = top_index // V, top_index % V
        real = top_scores > inf
        live = real & (token != eos)
        live_above = live.cumsum(-1) - live.long()  # live candidates ranked above each one
        ending = real & (token == eos) & (live_above < K)  # an <eos> ranked among the K best live ones
        if ending.any():
            for a, j in ending.nonzero().tolist():
                b, s = rows[a], top_scores[a, j].item()
                seq = history[a, beam[a, j]].tolist()
                unread = _coverage(coverage[a, beam[a, j]], source[a, 0], beta) if beta else 0.0
                finished[b].append(Hypothesis(seq, s / length_penalty(len(seq) + 1, alpha) + unread, s))
                if len(finished[b]) >= n_best:
                    bar[b] = sorted((h.score for h in finished[b]), reverse=True)[n_best - 1]
        new_scores, pick = top_scores.masked_fill(~live, inf).topk(K, dim=-1)  # the K best live, in order
        best_alive = (new_scores[:, 0] / kindest).tolist()
        searching = [a for a in range(A) if best_alive[a] > inf and bar[rows[a]] < best_alive[a]]
        if not searching:
            scores = scores[:0]
            break
        keep = torch.tensor(searching, device=device)
        new_scores, pick, beam, token = new_scores[keep], pick[keep], beam[keep], token[keep]
        rows = [rows[a] for a in searching]
        flat = (keep[:, None] * K + beam.gather(1, pick)).view(-1)
        # a row's beams share its source: the memory moves only when rows leave the search
        moved = len(searching) < A
        state = state.select(flat) if moved or not hasattr(state, "select_carried") else state.select_carried(flat)
        new_token = token.gather(1, pick)
        history = torch.cat([history.reshape(A * K, history.shape[-1])[flat].view(len(rows), K, -1), new_token[..., None]], -1)
        if beta:
            coverage = coverage.reshape(A * K, -1)[flat].view(len(rows), K, -1)
        scores = new_scores
        tokens = new_token.view(-1)
    if beta and scores.shape[0]:
        source = state.mask.t().reshape(scores.shape[0], K, -1)
    for a, b in enumerate(rows[: scores.shape[0]]):  # out of steps: live beams count as they are
        for k, s in enumerate(scores[a].tolist()):
            if s > inf:
                seq = history[a, k].tolist()
                unread = _coverage(coverage[a, k], source[a, 0], beta) if beta else 0.0
                finished[b].append(Hypothesis(seq, s / length_penalty(len(seq), alpha) + unread, s))
    for b in range(batch):
        finished[b].sort(key=lambda h: -h.score)
        finished[b] = finished[b][:n_best]
    return finished
