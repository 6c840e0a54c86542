"""The decoder shared by `seq2seq` and `generate`: it writes a sequence one token at a time,
from an initial state (bridged from an encoder or a condition), optionally attending to a
memory (the encoder's outputs) with input feeding (Luong et al., 2015)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from seqcli.api import CellSpec
from seqcli.nn.attention import Attention
from seqcli.nn.pretrained import VocabEmbedding
from seqcli.nn.recurrent import Recurrent
from seqcli.vocab import Vocab


@dataclass
class DecoderState:
    """Everything one decoding step needs; batch is dim 1 of `rnn` tensors and of
    `memory`/`keys`/`mask`, dim 0 of `feed`."""

    rnn: tuple[Tensor, ...]  # each (L, B, H)
    feed: Tensor | None = None  # (B, H): the previous attentional vector
    memory: Tensor | None = None  # (S, B, K) encoder outputs
    keys: Tensor | None = None  # (S, B, Q) projected once
    mask: Tensor | None = None  # (S, B) True on real source positions
    copy: Tensor | None = None  # (S, B) long: the output id each source position is copied as (copy attention)

    def select(self, index: Tensor, carried_only: bool = False) -> DecoderState:
        """Reorder or repeat the batch (beam search). `carried_only`: only what changes from
        step to step (the recurrent state and the fed vector); the memory, its keys and mask
        stay, for a reordering among rows that share them (a source's beams)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (carried_only and f.name not in ("rnn", "feed")):
                out[f.name] = value
            elif f.name == "rnn":
                out[f.name] = tuple(s.index_select(1, index) for s in value)
            else:
                out[f.name] = value.index_select(0 if f.name == "feed" else 1, index)
        return replace(self, **out)

    def select_carried(self, index: Tensor) -> DecoderState:
        return self.select(index, carried_only=True)


class Bridge(nn.Module):
    """A summary vector (B, S) -> the decoder's initial state, one tanh(Linear) per state tensor
    and layer."""

    def __init__(self, summary_size: int, hidden_size: int, num_layers: int, num_states: int):
        super().__init__()
        self.num_layers, self.num_states, self.hidden_size = num_layers, num_states, hidden_size
        self.proj = nn.Linear(summary_size, hidden_size * num_layers * num_states)

    def forward(self, summary: Tensor) -> tuple[Tensor, ...]:
        B = summary.shape[0]
        h = torch.tanh(self.proj(summary)).view(B, self.num_states, self.num_layers, self.hidden_size)
        return tuple(h[:, k].transpose(0, 1).contiguous() for k in range(self.num_states))  # each (L, B, H)


class Decoder(nn.Module):
    def __init__(self, vocab: Vocab | int, cell: CellSpec, embedding_size: int, hidden_size: int, num_layers: int,
                 dropout: float, attention: str = "none", memory_size: int = 0, copy: bool = False):
        """`vocab`: the output tokens (their `Vocab`, or how many there are). `copy`: copy
        attention (See et al., 2017, pointer-generator): at every step a learned gate mixes the
        vocabulary's distribution with the attention over the source positions, each placed
        on the output id it is copied as (`DecoderState.copy`: a token of the vocabulary, or
        V + its first position for one the vocabulary lacks), so the outputs are V + S ids
        and `logits` are log-probabilities."""
        super().__init__()
        if isinstance(vocab, Vocab):
            self.embed, vocab_size = VocabEmbedding(vocab, embedding_size), len(vocab)
        else:
            self.embed, vocab_size = nn.Embedding(vocab, embedding_size), vocab
        self.drop = nn.Dropout(dropout)
        self.attending = attention != "none"
        feed = hidden_size if self.attending else 0
        self.rnn = Recurrent(cell, embedding_size + feed, hidden_size, num_layers, dropout)
        if self.attending:
            self.attention = Attention(attention, hidden_size, memory_size)
            self.combine = nn.Linear(hidden_size + memory_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.vocab_size, self.copying = vocab_size, copy
        if copy:
            self.gate = nn.Linear(hidden_size + embedding_size, 1)  # P(generate) from [attentional vector; input]

    def start(self, rnn_state, memory: Tensor | None = None, mask: Tensor | None = None,
              copy: Tensor | None = None) -> DecoderState:
        if not self.attending:
            return DecoderState(rnn_state)
        B = memory.shape[1]
        return DecoderState(rnn_state, memory.new_zeros(B, self.rnn.hidden_size), memory,
                            self.attention.keys(memory), mask, copy if self.copying else None)

    def forward(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: tokens (T, B) -> logits (T, B, V), attention weights (T, B, S) or None."""
        if not self.attending:  # the whole target at once on the fused kernel
            h, _ = self.rnn(self.drop(self.embed(tokens)), state.rnn)
            return self.out(self.drop(h)), None
        x_all = self.drop(self.embed(tokens))  # (T, B, E): embedded at once
        layers, weights_rnn, feed = self.rnn.unstack(state.rnn), self.rnn.step_weights(), state.feed
        feeds, weights = [], []
        for x in x_all.unbind(0):
            h, layers = self.rnn.step_layers(torch.cat([x, feed], -1), layers, weights_rnn)
            feed, w = self._attend(h, state)
            feeds.append(feed)
            weights.append(w)
        feeds, weights = torch.stack(feeds), torch.stack(weights)
        logits = self.out(self.drop(feeds))
        if self.copying:
            logits = self._mix(logits, feeds, x_all, weights, state.copy)
        return logits, weights

    def step(self, token: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        """token (B,) -> logits (B, V), the next state, attention weights (B, S) or None."""
        if self.copying:  # a copied token the vocabulary lacks is read as <unk>
            token = token.masked_fill(token >= self.vocab_size, 0)
        x = self.drop(self.embed(token))
        if not self.attending:
            h, rnn = self.rnn.step(x, state.rnn)
            return self.out(self.drop(h)), replace(state, rnn=rnn), None
        h, rnn = self.rnn.step(torch.cat([x, state.feed], -1), state.rnn)
        feed, weights = self._attend(h, state)
        logits = self.out(self.drop(feed))
        if self.copying:
            logits = self._mix(logits, feed, x, weights, state.copy)
        return logits, replace(state, rnn=rnn, feed=feed), weights

    def _mix(self, logits: Tensor, feed: Tensor, x: Tensor, weights: Tensor, copy: Tensor) -> Tensor:
        """log(p * softmax(logits) + (1 - p) * the attention placed on each position's output
        id), over V + S ids; p = sigmoid(gate([feed; x])). Any leading dims (time, batch)."""
        p = torch.sigmoid(self.gate(torch.cat([feed, x], -1)))  # (..., 1)
        generated = logits.float().softmax(-1) * p
        generated = torch.cat([generated, torch.zeros_like(weights, dtype=generated.dtype)], -1)  # (..., V + S)
        where = copy.t().expand(*weights.shape[:-1], -1)  # (..., S): each position's output id
        mixed = generated.scatter_add(-1, where, weights.float() * (1 - p))
        return mixed.clamp_min(1e-12).log()

    def _attend(self, h: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        """The attentional vector tanh(W [h; context]) (B, H), fed to the next step, and the
        attention weights (B, S)."""
        context, weights = self.attention(h, state.keys, state.memory, state.mask)
        return torch.tanh(self.combine(torch.cat([h, context], -1))), weights
