"""Several trained models as one, for decoding and scoring (OpenNMT's and fairseq's ensembles):
their probabilities averaged at every step, or their outputs averaged. Each wrapper offers
the interface its task uses of a single model, so the task's own `sample` and `evaluate` run
it unchanged (`Task.ensemble`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqcli.errors import SeqcliError


def mean_probabilities(logits: list[Tensor]) -> Tensor:
    """The log of the mean of the models' probabilities over the last dim: a tensor that acts
    as logits (its softmax is the mean, its cross-entropy the mean's negative log)."""
    if len(logits) == 1:
        return logits[0]
    stacked = torch.stack([x.float().log_softmax(-1) for x in logits])
    return torch.logsumexp(stacked, 0) - math.log(len(logits))


class MeanProbabilities(nn.Module):
    """Models whose forward gives logits (a classifier, a tagger): the mean probabilities."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, *args, **kwargs) -> Tensor:
        return mean_probabilities([m(*args, **kwargs) for m in self.members])


class MeanOutputs(nn.Module):
    """Models whose forward gives numbers (a forecaster): the mean of the numbers. The first
    model's other attributes (its scales, say) stand for all of them."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, *args, **kwargs) -> Tensor:
        return torch.stack([m(*args, **kwargs) for m in self.members]).mean(0)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("members")[0], name)


@dataclass
class States:
    """One decoding state per model, selected together (beam search)."""

    members: list

    @property
    def rnn(self):  # where the decoding runs: the first model's state says
        return self.members[0].rnn

    @property
    def mask(self):  # the source's real positions: the same in every model's state
        return self.members[0].mask

    def select(self, index: Tensor) -> States:
        return States([s.select(index) for s in self.members])

    def select_carried(self, index: Tensor) -> States:
        return States([s.select_carried(index) if hasattr(s, "select_carried") else s.select(index)
                       for s in self.members])


class Decoders(nn.Module):
    """Attentional decoders (`seqcli.layers.Decoder`) stepped together: every step's logits
    are the mean of their probabilities; attention weights are averaged."""

    def __init__(self, decoders: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(decoders)
        self.attending = all(d.attending for d in decoders)
        copying = {d.copying for d in decoders}
        if len(copying) > 1:
            raise SeqcliError("an ensemble combines models that all copy (model.copy) or none that does")
        self.copying = copying.pop()

    def forward(self, y_in: Tensor, state: States):
        outs = [d(y_in, s) for d, s in zip(self.members, state.members)]
        return mean_probabilities([o[0] for o in outs]), _mean([o[1] for o in outs])

    def step(self, tokens: Tensor, state: States):
        outs = [d.step(tokens, s) for d, s in zip(self.members, state.members)]
        return mean_probabilities([o[0] for o in outs]), States([o[1] for o in outs]), _mean([o[2] for o in outs])


class Writers(nn.Module):
    """Sequence writers (a `start(batch)` and a `decoder`): one start per model, their
    decoders stepped together."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(models)
        self.decoder = Decoders([m.decoder for m in models])

    def start(self, batch) -> States:
        return States([m.start(batch) for m in self.members])

    def __getattr__(self, name: str):  # what the models read and write: the first model's stands for all
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("members")[0], name)


def _mean(weights: list):
    return None if any(w is None for w in weights) else torch.stack(weights).mean(0)
