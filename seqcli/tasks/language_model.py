"""Task `language_model`: predict the next token; truncated BPTT over a token stream.

The training stream is laid out as `batch_size` parallel columns (as in PyTorch's
word_language_model example); consecutive batches continue each column, so the hidden
state is carried from one batch to the next and only the gradient is cut at `seq_len`.
"""

from __future__ import annotations

import math
import secrets
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqcli.api import (LOWER, TEXT, CellSpec, Data, DataError, Exported, Flag, Graph, Range, Samples, Seed, StepResult, Task,
                        TrainConfig, Vocab, device_of)
from seqcli.layers import (Recurrent, VocabEmbedding, embedding_dropout, locked_dropout, mean_probabilities,
                           next_token, states_of, traceable)

Size = Annotated[int, Range(1, 65536)]
SHORT_PRIME = 8  # tokens: a prime up to this long is read a step at a time
Dropout = Annotated[float, Range(0, 1, hi_open=True)]


class RNNLanguageModel(nn.Module):
    """Embedding -> recurrent stack -> (projection) -> softmax over the vocabulary, with the
    regularisers of AWD-LSTM (Merity et al., 2017) available: embedding dropout, locked
    dropout on the inputs, between layers and on the outputs, and weight drop."""

    def __init__(self, vocab: Vocab | int, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, dropout: float, tie_weights: bool, embedding_dropout: float = 0.0,
                 input_dropout: float = 0.0, hidden_dropout: float = 0.0, output_dropout: float = 0.0,
                 weight_drop: float = 0.0, last_layer_size: int | None = None):
        super().__init__()
        if isinstance(vocab, Vocab):  # its rows can come from a file of word vectors (model.embeddings)
            self.embed, vocab_size = VocabEmbedding(vocab, embedding_size), len(vocab)
        else:
            self.embed, vocab_size = nn.Embedding(vocab, embedding_size), vocab
        self.drop = nn.Dropout(dropout)
        self.embedding_dropout, self.input_dropout, self.output_dropout = embedding_dropout, input_dropout, output_dropout
        options = {"dropout": dropout, "locked_dropout": hidden_dropout, "weight_drop": weight_drop}
        top = last_layer_size or hidden_size
        if num_layers == 1 or top == hidden_size:  # one size throughout
            self.rnn = Recurrent(cell, embedding_size, top, num_layers, **options)
        else:
            self.rnn = Resized(cell, embedding_size, hidden_size, num_layers, top, **options)
        # tying the output to the embedding needs outputs of the embedding's size
        self.proj = nn.Linear(top, embedding_size) if tie_weights and top != embedding_size else None
        self.out = nn.Linear(embedding_size if tie_weights else top, vocab_size)
        if tie_weights:
            self.out.weight = self.embed.weight

    def forward(self, x: Tensor, state=None, hidden: bool = False):
        """x (T, B) token ids -> logits (T, B, V), final state; with `hidden`, also the top
        layer's outputs before and after the output dropout (for AR and TAR)."""
        e = embedding_dropout(self.embed, x, self.embedding_dropout, self.training)
        h, state = self.rnn(locked_dropout(self.drop(e), self.input_dropout, self.training), state)  # (T, B, H)
        dropped = locked_dropout(self.drop(h), self.output_dropout, self.training)
        logits = self._logits(dropped)
        return (logits, state, h, dropped) if hidden else (logits, state)

    def read(self, x: Tensor) -> tuple[Tensor, tuple]:
        """A prime x (T, B) read from the zero state: the logits after its last token (B, V)
        and the state. A short one is stepped: the sequence kernel's set-up costs more than
        a few steps (0.57 ms against 0.09 for one token of the char-lm model on 2 cores)."""
        if self.training or x.shape[0] > SHORT_PRIME:
            logits, state = self(x, None)
            return logits[-1], state
        state = self.rnn.initial_state(x.shape[1], self.embed.weight)
        for tokens in x:
            logits, state = self.step(tokens, state)
        return logits, state

    def step(self, tokens: Tensor, state):
        """tokens (B,) -> logits (B, V), new state: one step, for sampling."""
        h, state = self.rnn.step(self.embed(tokens), state)
        return self._logits(h), state

    def stepper(self, state):
        """Sampling from `state` on: a function tokens (B,) -> the next logits (B, V) that
        carries the state itself, layer by layer, with the weights laid out once."""
        layers, weights = self.rnn.unstack(state), self.rnn.step_weights()
        embed, out = self.embed, self.out
        if isinstance(self.rnn, Recurrent) and self.rnn.kernel == "lstm" and self.proj is None and not self.training:
            # the fused LSTM's own cell, layer after layer, between the embedding's and the
            # output layer's functions: nothing else runs between tokens
            table, out_weight, out_bias = embed.weight, out.weight, out.bias

            def step(tokens: Tensor) -> Tensor:
                x = F.embedding(tokens, table)
                for layer, w in enumerate(weights):
                    layers[layer] = torch.lstm_cell(x, layers[layer], *w)
                    x = layers[layer][0]
                return F.linear(x, out_weight, out_bias)

            return step

        def step(tokens: Tensor) -> Tensor:
            nonlocal layers
            h, layers = self.rnn.step_layers(embed(tokens), layers, weights)
            return self._logits(h)

        return step

    def _logits(self, h: Tensor) -> Tensor:
        return self.out(self.proj(h) if self.proj is not None else h)


class Resized(nn.Module):
    """A recurrent stack whose top layer has its own size: `num_layers - 1` layers of
    `hidden_size`, then one of `top_size` (two `Recurrent`s with a dropout between them,
    locked when `locked_dropout` is set). It answers what the language model asks of a
    `Recurrent`; its state is the lower stack's tensors followed by the top layer's."""

    def __init__(self, cell: CellSpec, input_size: int, hidden_size: int, num_layers: int, top_size: int,
                 dropout: float = 0.0, locked_dropout: float = 0.0, weight_drop: float = 0.0):
        super().__init__()
        self.lower = Recurrent(cell, input_size, hidden_size, num_layers - 1, dropout, locked_dropout=locked_dropout,
                               weight_drop=weight_drop)
        self.top = Recurrent(cell, hidden_size, top_size, 1, weight_drop=weight_drop)
        self.dropout, self.locked_dropout = dropout, locked_dropout
        self.hidden_size, self.num_layers, self.num_states = top_size, num_layers, self.lower.num_states

    def _between(self, x: Tensor) -> Tensor:
        if self.locked_dropout:
            return locked_dropout(x, self.locked_dropout, self.training)
        return F.dropout(x, self.dropout, self.training) if self.dropout else x

    def forward(self, x: Tensor, state=None):
        k = self.num_states
        low, high = (None, None) if state is None else (state[:k], state[k:])
        x, low = self.lower(x, low)
        x, high = self.top(self._between(x), high)
        return x, tuple(low) + tuple(high)

    def unstack(self, state) -> list:
        k = self.num_states
        return self.lower.unstack(state[:k]) + self.top.unstack(state[k:])

    def step_weights(self):
        return self.lower.step_weights(), self.top.step_weights()

    def step_layers(self, x: Tensor, layers: list, weights=None):
        low, high = weights if weights is not None else (None, None)
        x, below = self.lower.step_layers(x, layers[:-1], low)
        x, above = self.top.step_layers(self._between(x), layers[-1:], high)
        return x, below + above

    def step(self, x: Tensor, state):
        x, layers = self.step_layers(x, self.unstack(state))
        return x, tuple(self.lower.stack(layers[:-1])) + tuple(self.top.stack(layers[-1:]))

    def initial_state(self, batch: int, like: Tensor):
        return tuple(self.lower.initial_state(batch, like)) + tuple(self.top.initial_state(batch, like))


class LanguageModel(Task):
    """Next-token prediction over text. Metrics: loss (nats/token), perplexity, and bits per
    character at character level. `ar` and `tar` add AWD-LSTM's activation regularisation
    (ar * mean of the squared dropped top-layer outputs) and temporal activation
    regularisation (tar * mean squared change of the top layer's outputs between steps) to
    the training loss; the logged training loss is the cross-entropy (label-smoothed with
    `label_smoothing`) without them."""

    batched_option = "prime"  # requests for different primes are drawn together
    directions = {"perplexity": LOWER, "bpc": LOWER}

    def __init__(self, ar: Annotated[float, Range(0, 1000)] = 0.0, tar: Annotated[float, Range(0, 1000)] = 0.0,
                 label_smoothing: Annotated[float, Range(0, 1, hi_open=True)] = 0.0):
        """`label_smoothing`: the share of each next token's probability spread over the rest
        of the vocabulary in the training loss; validation loss and perplexity are without it.

        `ar`: AWD-LSTM's activation regularisation: this factor times the mean square of the
        top layer's dropped-out outputs, added to the training loss.

        `tar`: temporal activation regularisation: this factor times the mean square of the
        change in the top layer's outputs from one step to the next, added to the loss."""
        self.ar, self.tar, self.label_smoothing = ar, tar, label_smoothing

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 64, hidden_size: Size = 256,
                    num_layers: Annotated[int, Range(1, 64)] = 2, dropout: Dropout = 0.0,
                    tie_weights: bool = False, embedding_dropout: Dropout = 0.0, input_dropout: Dropout = 0.0,
                    hidden_dropout: Dropout = 0.0, output_dropout: Dropout = 0.0,
                    weight_drop: Dropout = 0.0, last_layer_size: Size | None = None) -> RNNLanguageModel:
        """`dropout`: standard dropout on the embeddings, between layers and on the outputs.
        AWD-LSTM's: `embedding_dropout` (whole words), locked (one mask per sequence)
        `input_dropout`, `hidden_dropout` (between layers, in place of `dropout` there) and
        `output_dropout`, and `weight_drop` on the recurrent weights (fused cells only).
        `last_layer_size`: the top layer's size when it differs from `hidden_size` (the
        layers below it have `hidden_size`; one layer alone has this size); AWD-LSTM makes it
        `embedding_size` so that tied weights need no projection (with tied weights
        and a top layer of another size, a linear projection maps it to the embedding).

        `tie_weights`: the output layer shares the embedding's weights (Press and Wolf).

        `embedding_dropout`: whole words dropped from the embedding (AWD-LSTM).

        `input_dropout`: locked dropout (one mask per sequence) on the embeddings (AWD-LSTM).

        `hidden_dropout`: locked dropout between the layers, in place of `dropout` there.

        `output_dropout`: locked dropout on the top layer's outputs (AWD-LSTM).

        `weight_drop`: DropConnect on the recurrent weights (AWD-LSTM's; fused cells only)."""
        vocab = _vocab(data.fields)
        return RNNLanguageModel(vocab, cell, embedding_size, hidden_size, num_layers, dropout, tie_weights,
                                embedding_dropout, input_dropout, hidden_dropout, output_dropout, weight_drop,
                                last_layer_size)

    def batches(self, data: Data, config: TrainConfig, epoch: int):
        columns = batchify(data.splits["train"], config.batch_size, "train")
        for i in range(0, columns.shape[0] - 1, config.seq_len):
            n = min(config.seq_len, columns.shape[0] - 1 - i)
            yield columns[i : i + n], columns[i + 1 : i + 1 + n]  # inputs, targets: (T, B)

    def shard(self, batch, rank: int, world: int):
        return tuple(t[:, rank::world] for t in batch)  # each rank its own streams (columns)

    def train_step(self, model: RNNLanguageModel, batch, carry) -> StepResult:
        device = device_of(model)
        x, y = (t.to(device, torch.long) for t in batch)
        logits, state, h, dropped = model(x, carry, hidden=True)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=self.label_smoothing)
        penalty = None
        if self.ar:
            penalty = self.ar * dropped.pow(2).mean()
        if self.tar and h.shape[0] > 1:
            penalty = (penalty or 0) + self.tar * (h[1:] - h[:-1]).pow(2).mean()
        return StepResult(loss, y.numel(), tuple(s.detach() for s in state), sequences=y.shape[1], penalty=penalty)

    def evaluate(self, model: RNNLanguageModel, data: Data, split: str, config: TrainConfig) -> dict[str, float]:
        return self.score(model, data.splits[split], _vocab(data.fields), config, split)

    def score(self, model, stream: Tensor, vocab, config: TrainConfig, name: str) -> dict[str, float]:
        device = device_of(model)
        batch = min(config.batch_size, max(1, (stream.numel() - 1) // 2))
        columns = batchify(stream, batch, name)
        total, count, state = 0.0, 0, None
        for n_batch, i in enumerate(range(0, columns.shape[0] - 1, config.seq_len)):
            if config.eval_batches is not None and n_batch >= config.eval_batches:
                break
            n = min(config.seq_len, columns.shape[0] - 1 - i)
            x = columns[i : i + n].to(device, torch.long)
            y = columns[i + 1 : i + 1 + n].to(device, torch.long)
            logits, state = model(x, state)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
        loss = total / count
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
        if vocab.level == "char":
            metrics["bpc"] = loss / math.log(2)
        return {**metrics, "tokens": count}  # the targets scored (the remainder of the columns is dropped)

    def sample(
        self,
        model: RNNLanguageModel,
        fields: dict,
        *,
        prime: Annotated[str, Flag("-p")] = "",
        length: Annotated[int, Range(1, 10**6), Flag("-n")] = 300,
        temperature: Annotated[float, Range(0, 100), Flag("-t", greedy=0.0)] = 0.8,
        top_k: Annotated[int, Range(1, 10**9)] | None = None,
        top_p: Annotated[float, Range(0, 1, lo_open=True)] | None = None,
        num_samples: Annotated[int, Range(1, 10000), Flag("-s")] = 1,
        seed: Seed | None = None,
    ) -> Samples:
        """`num_samples` continuations of `prime`, `length` tokens each. Temperature 0 is
        greedy. The recurrent state is carried step by step; the prime is read once."""
        vocab = _vocab(fields)
        with torch.no_grad():
            drawn = torch.stack(list(self._draw(model, vocab, [prime], length, temperature, top_k, top_p, num_samples,
                                                seed))).cpu()  # (length, N)
        prime_ids = vocab.encode(prime)
        return Samples([vocab.decode(prime_ids + drawn[:, j].tolist()) for j in range(num_samples)], separator="\n\n")

    def sample_batch(self, model: RNNLanguageModel, fields: dict, requests: list[dict]) -> list[Samples]:
        """Several requests that differ only in their prime, drawn together: each prime is
        read on its own, then every row steps at once."""
        vocab, first = _vocab(fields), requests[0]
        options = {k: first[k] for k in ("length", "temperature", "top_k", "top_p", "num_samples", "seed")}
        primes = [r["prime"] for r in requests]
        with torch.no_grad():
            drawn = torch.stack(list(self._draw(model, vocab, primes, **options))).cpu()  # (length, rows)
        n = options["num_samples"]
        return [Samples([vocab.decode(vocab.encode(p) + drawn[:, i * n + j].tolist()) for j in range(n)],
                        separator="\n\n") for i, p in enumerate(primes)]

    def stream(self, model: RNNLanguageModel, fields: dict, *, prime: str = "", length: int = 300,
               temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None, num_samples: int = 1,
               seed: int | None = None):
        """`sample` as it is drawn: first the prime, then, per token, the text each sample
        gained (one string per sample); joined, they are `sample`'s texts."""
        vocab = _vocab(fields)
        prime_ids = vocab.encode(prime)
        texts = [vocab.decode(prime_ids)] * num_samples
        yield list(texts)
        drawn: list[list[int]] = [[] for _ in range(num_samples)]
        for token in self._draw(model, vocab, [prime], length, temperature, top_k, top_p, num_samples, seed):
            pieces = []
            for j, t in enumerate(token.tolist()):
                drawn[j].append(t)
                if vocab.level == "char":  # a character decodes alone
                    pieces.append(vocab.decode([t]))
                else:  # words and pieces: what the text so far gained (spaces belong between tokens)
                    text = vocab.decode(prime_ids + drawn[j])
                    pieces.append(text[len(texts[j]):])
                    texts[j] = text
            yield pieces

    def _draw(self, model: RNNLanguageModel, vocab, primes: list[str], length: int, temperature: float,
              top_k: int | None, top_p: float | None, num_samples: int, seed: int | None):
        """The tokens drawn at each step, (rows,): `num_samples` rows per prime. Each prime is
        read once (a new line's token when it is empty), then one step per token for all rows."""
        for prime in primes:
            unknown = vocab.unknown(prime)
            if unknown:
                what = "words" if vocab.level == "word" else "characters"
                shown = ", ".join(repr(t) for t in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
                raise DataError(f"the prime has {what} the model never saw in training: {shown}")
        device = device_of(model)
        generator = torch.Generator(device=device)
        generator.manual_seed(seed if seed is not None else secrets.randbits(63))
        starts = [vocab.encode(prime) or [_start_token(vocab)] for prime in primes]
        by_length: dict[int, list[int]] = {}
        for i, start in enumerate(starts):  # primes of one length are read in one call
            by_length.setdefault(len(start), []).append(i)
        scores, states, order = [], [], []
        for group in by_length.values():
            x = torch.tensor([starts[i] for i in group], device=device).t()  # (P, primes)
            x = x.repeat_interleave(num_samples, dim=1)  # (P, primes * N): each prime's N rows together
            logits, state = model.read(x)
            scores.append(logits)
            states.append(state)
            order += [i * num_samples + j for i in group for j in range(num_samples)]
        back = torch.argsort(torch.tensor(order, device=device))  # rows back in the primes' order
        logits = torch.cat(scores)[back]  # (rows, V)
        step = model.stepper(_joined(states, back))
        for t in range(length):
            token = next_token(logits, temperature, top_k, top_p, generator)
            yield token
            if t + 1 < length:
                logits = step(token)

    def ensemble(self, models: list[RNNLanguageModel]) -> LanguageModels:
        """Sampling and scoring with several models at once: the mean of their probabilities."""
        return LanguageModels(models)

    def export(self, model: RNNLanguageModel, fields: dict) -> Exported:
        """The step: the prime is read one token at a time, then tokens are drawn from it."""
        model = traceable(model)
        states = states_of(model.rnn)
        names = [f"state{i}" for i in range(len(states))]
        inputs = {"token": torch.zeros(states[0].shape[1], dtype=torch.long), **dict(zip(names, states))}
        dynamic = {"token": {0: "batch"}, **{n: {1: "batch"} for n in names}}
        graph = Graph("step", Step(model), inputs, ["logits", *[f"next_{n}" for n in names]], dynamic)
        vocab = _vocab(fields)
        return Exported("generator", [graph], {"field": TEXT, "states": names, "start": _start_token(vocab)})


def _joined(states: list, order: Tensor):
    """The states of several groups of rows as one (batch is dim 1 of every tensor), rows in
    `order`; states nest (an ensemble's hold one per model)."""
    if isinstance(states[0], Tensor):
        return torch.cat(states, 1)[:, order]
    return tuple(_joined([s[k] for s in states], order) for k in range(len(states[0])))


class LanguageModels(nn.Module):
    """Language models as one (`LanguageModel.ensemble`): at every step the mean of their
    probabilities; the state is one per model."""

    def __init__(self, models: list[RNNLanguageModel]):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x: Tensor, state=None, hidden: bool = False):
        outs = [m(x, s) for m, s in zip(self.members, state or [None] * len(self.members))]
        return mean_probabilities([o[0] for o in outs]), tuple(o[1] for o in outs)

    def read(self, x: Tensor):
        outs = [m.read(x) for m in self.members]
        return mean_probabilities([o[0] for o in outs]), tuple(o[1] for o in outs)

    def stepper(self, state):
        steps = [m.stepper(s) for m, s in zip(self.members, state)]
        return lambda tokens: mean_probabilities([step(tokens) for step in steps])


class Step(nn.Module):
    """One step of a language model for export: token (B,), states -> logits (B, V), states."""

    def __init__(self, model: RNNLanguageModel):
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, *state: Tensor):
        h, state = self.model.rnn.step(self.model.embed(token), state)
        return (self.model._logits(h), *state)


def batchify(stream: Tensor, batch_size: int, name: str) -> Tensor:
    """A 1-D stream -> (L, batch_size) columns, dropping the remainder."""
    length = stream.numel() // batch_size
    if length < 2:
        raise DataError(f"the {name} split has {stream.numel()} tokens, too few for batch_size {batch_size}")
    return stream[: length * batch_size].view(batch_size, length).t()


def _vocab(fields: dict):
    if TEXT not in fields:
        raise DataError("task language_model needs a text dataset (a token stream with a vocabulary 'text')")
    return fields[TEXT]


def _start_token(vocab) -> int:
    """Where sampling starts without a prime: a new line."""
    if vocab.lines and vocab.eos is not None:  # words, subword pieces: the end of a line
        return vocab.eos
    return vocab.index.get("\n", 1)
