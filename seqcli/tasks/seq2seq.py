"""Tasks that write a sequence: `seq2seq` (many-to-many, lengths differ) and `generate`
(one-to-many).

`seq2seq` encodes the source (any cell, optionally bidirectional), bridges the encoder's
final state into the decoder's initial state, and decodes with attention (none, dot,
general, additive) and input feeding. `generate` sets the decoder's initial state from a
condition: a class label or a vector (an image, flattened). Both train with teacher forcing
and decode greedily, by sampling, or by batched beam search with a length penalty.
"""

from __future__ import annotations

import math
import secrets
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from seqcli.api import (CONDITION, HIGHER, LOWER, SOURCE, SOURCE_FIRST, TARGET, TARGET_COPY, CellSpec, ConfigError, Data, DataError, Exported, Figure, Flag,
                        Graph, Hypothesis, Labels, Numeric, Output, Prediction, Range, Samples, Seed, Vocab, device_of)
from seqcli.layers import (EXAMPLE_BATCH, IGNORE, AttentionKind, Bridge, Decoder, DecoderState, Encoder, ExampleTask,
                           Scale, Writers, beam_search, encode_input, mask, nearest, pad, pyplot, require, sample, save,
                           sequence_inputs, stack_inputs, text_scores, traceable)
from seqcli.tasks.classify import Dropout, Size, Smoothing

Layers = Annotated[int, Range(1, 64)]
MaxLength = Annotated[int, Range(1, 100_000)]
BeamSize = Annotated[int, Range(1, 1000), Flag("-b")]
Temperature = Annotated[float, Range(0, 100), Flag("-t", greedy=0.0)]


class Seq2SeqModel(nn.Module):
    """What the model reads and writes (`source`, `target`: their vocabularies) and whether it
    copies (`decoder.copying`) are the model's own facts: the task reads them from here."""

    def __init__(self, source: Vocab, target: Vocab, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, dropout: float, bidirectional: bool, attention: str, copy: bool = False):
        super().__init__()
        self.source, self.target = source, target
        self.encoder = Encoder(source, cell, embedding_size, hidden_size, num_layers, dropout, bidirectional)
        self.bridge = Bridge(self.encoder.output_size, hidden_size, num_layers, self.encoder.rnn.num_states)
        self.decoder = Decoder(target, cell, embedding_size, hidden_size, num_layers, dropout, attention,
                               self.encoder.output_size, copy)

    def start(self, batch: dict) -> DecoderState:
        out, state = self.encoder(batch["x"], batch["lengths"])  # (S, B, D*H)
        initial = self.bridge(self.encoder.summary(state))
        return self.decoder.start(initial, out, mask(batch["lengths"], out.shape[0]), batch.get("copy"))


class ConditionedModel(nn.Module):
    def __init__(self, condition, target: Vocab, cell: CellSpec, embedding_size: int, hidden_size: int,
                 num_layers: int, dropout: float):
        super().__init__()
        self.target = target
        if isinstance(condition, Labels):
            self.condition = nn.Embedding(len(condition), hidden_size)
        else:
            self.condition = nn.Sequential(Scale(condition), nn.Linear(condition.dim, hidden_size), nn.Tanh())
        self.decoder = Decoder(target, cell, embedding_size, hidden_size, num_layers, dropout)
        self.bridge = Bridge(hidden_size, hidden_size, num_layers, self.decoder.rnn.num_states)

    def start(self, batch: dict) -> DecoderState:
        return self.decoder.start(self.bridge(self.condition(batch["x"])))


class Start(nn.Module):
    """For export: the inputs (ids and lengths, or a condition) -> the decoder's first state,
    as the tensors `DecoderState` holds."""

    def __init__(self, model: nn.Module, condition: bool):
        super().__init__()
        self.model, self.condition = model, condition

    def forward(self, x, lengths=None, copy=None):
        batch = {"x": x} if self.condition else {"x": x, "lengths": lengths}
        if copy is not None:  # copy attention: each source position's output id
            batch["copy"] = copy
        state = self.model.start(batch)
        return (*state.rnn, *(getattr(state, name) for name in carried(self.model.decoder)[len(state.rnn):]
                              + fixed(self.model.decoder) if name != "copy"))  # copy: the input itself


class Step(nn.Module):
    """For export: token (B,), the state's tensors -> logits (B, V), the next state's carried
    tensors (and the attention weights (B, S) when the decoder attends)."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, token, *tensors):
        names = carried(self.decoder) + fixed(self.decoder)
        values = dict(zip(names, tensors))
        rnn = tuple(values.pop(f"rnn{i}") for i in range(self.decoder.rnn.num_states))
        logits, state, weights = self.decoder.step(token, DecoderState(rnn, **values))
        out = (logits, *state.rnn) + ((state.feed, weights) if self.decoder.attending else ())
        return out


def carried(decoder: Decoder) -> list[str]:
    """The state's tensors that change at every step (batch on axis 1, `feed` on axis 0)."""
    return [f"rnn{i}" for i in range(decoder.rnn.num_states)] + (["feed"] if decoder.attending else [])


def fixed(decoder: Decoder) -> list[str]:
    """The state's tensors that stay (the source's memory, its keys and mask, and with copy
    attention each source position's output id; batch on axis 1)."""
    if not decoder.attending:
        return []
    return ["memory", "keys", "mask"] + (["copy"] if decoder.copying else [])


class SequenceWriter(ExampleTask):
    """Training, metrics and decoding shared by the tasks that write a target sequence."""

    input_field = SOURCE
    directions = {"token_accuracy": HIGHER, "ter": LOWER, "exact_match": HIGHER, "wer": LOWER, "cer": LOWER,
                  "bleu": HIGHER, "chrf": HIGHER}

    def __init__(self, label_smoothing: Smoothing = 0.0):
        """`label_smoothing`: the share of each target's probability spread over the other
        classes in the training loss (Szegedy et al., 2016); validation is scored without it."""
        self.label_smoothing = label_smoothing

    def batch(self, model, examples):
        """The inputs, and the targets as the decoder reads them (after `model.target.bos`) and
        writes them (ending in its `eos`)."""
        device = device_of(model)
        batch = self.collate_inputs([e[self.input_field] for e in examples], device)
        eos, bos = model.target.eos, model.target.bos
        targets = [e[TARGET] for e in examples]
        y_in, _ = pad([torch.cat([torch.tensor([bos]), t]) for t in targets], eos)
        y_out, _ = pad([torch.cat([t, torch.tensor([eos])]) for t in targets], IGNORE)
        return {**batch, "y_in": y_in.to(device), "y_out": y_out.to(device), "targets": targets}

    def collate_inputs(self, inputs, device) -> dict:
        x, lengths = stack_inputs(inputs, device)
        return {"x": x, "lengths": lengths}

    def user_batch(self, x: list, words: list, target: Vocab, device) -> dict:
        """A user's encoded inputs as a batch; for a copying model (`words`: each input's
        tokens), with each source position's output id."""
        batch = self.collate_inputs(x, device)
        if words and words[0] is not None:
            batch["copy"] = pad([copy_ids(w, target) for w in words], 0)[0].to(device)
        return batch

    def loss(self, model, batch):
        logits, _ = model.decoder(batch["y_in"], model.start(batch))  # (T, B, V)
        y = batch["y_out"]
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                               label_smoothing=self.smoothing(model))
        return loss, int((y != IGNORE).sum()), logits

    def metrics(self, model, parts, fields):
        """Token accuracy (teacher-forced), then the greedy outputs scored: exact match and
        token error rate on the ids, and on the detokenised text WER, CER, BLEU and chrF
        (`seqcli.metrics.text_scores`). Examples with the same input are one source with
        several references."""
        target = fields[TARGET]
        eos, bos = target.eos, target.bos
        right = total = 0
        outputs: dict[tuple, list[int]] = {}  # source -> the greedy output
        references: dict[tuple, list[list[int]]] = {}  # source -> its targets
        for batch, logits in parts:
            real = batch["y_out"] != IGNORE
            right += ((logits.argmax(-1) == batch["y_out"]) & real).sum().item()
            total += real.sum().item()
            longest = max(len(t) for t in batch["targets"])
            hyps = sample(model.decoder, model.start(batch), len(batch["targets"]), bos, eos, 2 * longest + 10)
            for i, (hyp, ref) in enumerate(zip(hyps, batch.get("copied_targets", batch["targets"]))):
                key = self.source_key(batch, i)
                outputs.setdefault(key, hyp.tokens)
                known = references.setdefault(key, [])
                if ref.tolist() not in known:
                    known.append(ref.tolist())
        errors = ref_tokens = 0
        for key, hyp in outputs.items():
            e, n = nearest(hyp, references[key])
            errors, ref_tokens = errors + e, ref_tokens + n
        scores = text_scores([copied_text(h, target) for h in outputs.values()],
                             [[copied_text(r, target) for r in references[k]] for k in outputs])
        return {"token_accuracy": right / max(total, 1), "ter": errors / max(ref_tokens, 1), **scores}

    def source_key(self, batch: dict, i: int) -> tuple:
        """Example i's input, as a key: the examples that share it are one source."""
        x = batch["x"]
        if "lengths" in batch:
            return tuple(x[: int(batch["lengths"][i]), i].flatten().tolist())
        return tuple(x[i].flatten().tolist())

    def check_sample(self, beam_size: int = 1, n_best: int = 1, coverage_penalty: float = 0.0, **options) -> None:
        if n_best > beam_size:
            raise ConfigError("n_best", f"must be <= beam_size ({beam_size}): a beam of {beam_size} "
                                        f"keeps only {beam_size} hypotheses")
        if coverage_penalty and beam_size == 1:
            raise ConfigError("coverage_penalty", "ranks the hypotheses of a beam: give beam_size > 1 with it")

    def sample(self, model, fields: dict, inputs: list[str] = (), *, beam_size: BeamSize = 1,
               n_best: Annotated[int, Range(1, 1000)] = 1, max_length: MaxLength = 100,
               length_penalty: Annotated[float, Range(0, 10)] = 0.0, temperature: Temperature = 0.0,
               top_k: Annotated[int, Range(1, 10**9)] | None = None,
               top_p: Annotated[float, Range(0, 1, lo_open=True)] | None = None, seed: Seed | None = None,
               **search) -> Samples:
        """One output per input: greedy (temperature 0), sampled, or the best of a beam; with
        n_best > 1, the n best as `text<TAB>score` lines, inputs separated by a blank line.
        Each is a `Prediction` whose hypotheses hold the outputs with their scores (the
        log-probability, divided by GNMT's length penalty in a beam, plus its coverage
        penalty where one is given). `search`:
        the options a subclass adds to the beam (seq2seq's `coverage_penalty`)."""
        coverage_penalty = search.get("coverage_penalty", 0.0)
        self.check_sample(beam_size, n_best, coverage_penalty)
        target, copying = fields[TARGET], model.decoder.copying
        eos, bos = target.eos, target.bos
        device = device_of(model)
        x = [self.encode_user_input(text, fields, f"input {i + 1}", copying) for i, text in enumerate(inputs)]
        if not x:
            raise DataError("give inputs (--input TEXT or --input-file FILE)")
        words = [fields[SOURCE].split(text) for text in inputs] if copying else [None] * len(x)
        with torch.no_grad():
            state = model.start(self.user_batch(x, words, target, device))
            if beam_size > 1:
                results = beam_search(model.decoder, state, len(x), bos, eos, max_length, beam_size, n_best,
                                      length_penalty, coverage_penalty)
            else:
                generator = torch.Generator(device=device)
                generator.manual_seed(seed if seed is not None else secrets.randbits(63))
                results = [[h] for h in sample(model.decoder, state, len(x), bos, eos, max_length, temperature,
                                               top_k, top_p, generator)]
        return Samples.of([Prediction.ranked([Hypothesis(copied_text(h.tokens, target, w), h.score) for h in r],
                                             listed=n_best > 1) for r, w in zip(results, words)])

    def ensemble(self, models):
        """Several runs' models as one writer: at every decoding step (greedy, sampled or in
        the beam) the mean of their probabilities."""
        return Writers(models)

    def export(self, model, fields: dict) -> Exported:
        """"start" (the inputs to the decoder's first state) and "step" (one token). With copy
        attention "start" also takes each source position's output id (`copy_ids`), and the
        step's scores cover the vocabulary and then the source's positions."""
        copying = model.decoder.copying
        model = traceable(model)
        decoder, condition = model.decoder, self.input_field == CONDITION
        if condition:
            field = fields[CONDITION]
            x = torch.zeros(EXAMPLE_BATCH, field.dim) if isinstance(field, Numeric) else torch.zeros(EXAMPLE_BATCH, dtype=torch.long)
            inputs, dynamic = {"x": x}, {"x": {0: "batch"}}
        else:
            inputs, dynamic = sequence_inputs(fields[SOURCE])
            if copying:
                inputs["copy"], dynamic["copy"] = torch.zeros_like(inputs["x"]), dynamic["x"]
        with torch.no_grad():
            first = Start(model, condition)(*inputs.values())
        names = carried(decoder) + fixed(decoder)
        made = [n for n in names if n != "copy"]  # a copying model's runner keeps the copy ids it gave
        if copying:
            first = (*first, inputs["copy"])
        start = Graph("start", Start(model, condition), inputs, made, dynamic)
        batch_axis = {n: 0 if n == "feed" else 1 for n in names}
        state_axes = {n: {batch_axis[n]: "batch", **({0: "source"} if n in ("memory", "keys", "mask", "copy") else {})}
                      for n in names}
        step_inputs = {"token": torch.zeros(EXAMPLE_BATCH, dtype=torch.long), **dict(zip(names, first))}
        outputs = ["logits", *[f"next_{n}" for n in carried(decoder)]] + (["attention"] if decoder.attending else [])
        step = Graph("step", Step(decoder), step_inputs, outputs, {"token": {0: "batch"}, **state_axes})
        eos, bos = fields[TARGET].eos, fields[TARGET].bos
        return Exported("writer", [start, step], {"input": self.input_field, "field": TARGET, "bos": bos, "eos": eos,
                                                  "carried": carried(decoder), "fixed": fixed(decoder),
                                                  "batch_axis": batch_axis, **({"copy": True} if copying else {})})


COPIED_AS_WORDS = ("<unk>", "<eos>", "<bos>")  # special tokens a source may hold as words
COPIED = 0xF0000  # a copied word the vocabulary lacks, when scored: a private-use character per source position


def copy_ids(tokens: list[str], target: Vocab, first: list[int] | None = None) -> torch.Tensor:
    """Each source token's output id for copy attention: its id in `target`, or, for a token
    the target vocabulary lacks (or <unk>), or a special token (<eos>, <bos>) written as a word
    in the source, len(target) + its first position in the source: copied as the word it is,
    so a source word `<eos>` never ends the output."""
    if first is None:
        seen: dict[str, int] = {}
        first = [seen.setdefault(t, i) for i, t in enumerate(tokens)]
    size, ids = len(target), []
    for token, f in zip(tokens, first):
        known = 0 if token in COPIED_AS_WORDS else target.index.get(token, 0)  # 0 is <unk>: the source's own word
        ids.append(known if known else size + f)
    return torch.tensor(ids, dtype=torch.long)


def copied_text(ids, target: Vocab, words: list[str] | None = None) -> str:
    """Output ids as text; an id past the vocabulary is a copied source word: `words[i]` for
    position i, or, without the words (scoring), a private-use character standing for it."""
    size = len(target)
    ids = [int(i) for i in ids]
    if all(i < size for i in ids):
        return target.decode(ids)
    pieces = [target.decode([i]) if i < size else (words[i - size] if words else chr(COPIED + i - size)) for i in ids]
    return "".join(pieces) if target.level == "char" else " ".join(pieces)


class Seq2Seq(SequenceWriter):
    """Sequence to sequence. Metrics: loss, token_accuracy (teacher forced), exact_match and
    ter (token error rate: edit distance / reference length) of greedy decoding."""

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 64, hidden_size: Size = 128,
                    num_layers: Layers = 1, dropout: Dropout = 0.0, bidirectional: bool = True,
                    attention: AttentionKind = "additive", copy: bool = False) -> Seq2SeqModel:
        """`copy`: true for copy attention (a pointer-generator), so a source word can be
        written out even when the target vocabulary lacks it (a name, a number never seen).

        `attention`: how the decoder weighs the source's positions at each step: additive
        (Bahdanau et al.), general or dot (Luong et al.), or none."""
        require(data.fields, "seq2seq", source=Vocab, target=Vocab)
        if copy and attention == "none":
            raise ConfigError("copy", "copies what the decoder attends to: give model.attention (additive, general "
                                      "or dot)")
        if copy and type(data.fields[TARGET]) is not Vocab:
            raise ConfigError("copy", "needs a char, whitespace or word target vocabulary (a copied word is one "
                                      "token of the output)")
        return Seq2SeqModel(data.fields[SOURCE], data.fields[TARGET], cell, embedding_size, hidden_size,
                            num_layers, dropout, bidirectional, attention, copy)

    def batch(self, model, examples):
        """With copy attention, also each source position's output id (`copy`) and the
        targets as the copying decoder writes them (a word the vocabulary lacks, found in the
        source: V + its first position there)."""
        batch = super().batch(model, examples)
        if not model.decoder.copying:
            return batch
        device, target, source = device_of(model), model.target, model.source.tokens
        size, unk, eos = len(target), 0, target.eos
        copies, written = [], []
        for e in examples:
            tokens = [source[i] for i in e[SOURCE].tolist()]
            first = e.get(SOURCE_FIRST)
            copies.append(copy_ids(tokens, target, first.tolist() if first is not None else None))
            to, where = e[TARGET], e.get(TARGET_COPY)
            written.append(to if where is None else torch.where((to == unk) & (where >= 0), size + where, to))
        batch["copy"] = pad(copies, 0)[0].to(device)
        batch["y_out"] = pad([torch.cat([w, torch.tensor([eos])]) for w in written], IGNORE)[0].to(device)
        batch["copied_targets"] = written
        return batch

    def encode_user_input(self, text, fields, where, copying: bool = False):
        return encode_input(text, fields[SOURCE], where, unknown_ok=copying)

    def sample(self, model, fields: dict, inputs: list[str] = (), *,
               coverage_penalty: Annotated[float, Range(0, 10)] = 0.0,
               attention_plot: Annotated[str | None, Output(".png")] = None, **options) -> Samples:
        """As for every sequence writer, and:

        `coverage_penalty`: GNMT's beta, added to a beam's scores as beta x the sum of log
        min(attention received, 1) over the source: hypotheses that leave source positions
        unattended rank lower (0.2 to 0.4 in Wu et al.).

        `attention_plot`: a file (out.png) to draw, for each input, the attention weights of
        every output token over the input tokens (the numbers in out.json)."""
        if attention_plot is not None and not model.decoder.attending:
            raise ConfigError("attention_plot", "this model has no attention (model.attention: none)")
        samples = super().sample(model, fields, inputs, coverage_penalty=coverage_penalty, **options)
        if attention_plot is not None:
            best = [p.hypotheses[0].output for p in samples.predictions]
            maps = self.alignments(model, fields, list(inputs), best)
            samples.figures["attention_plot"] = Figure(lambda path: attention_maps(maps, path), maps)
        return samples

    def alignments(self, model, fields: dict, inputs: list[str], outputs: list[str]) -> list[dict]:
        """For each (input, output) pair: the input tokens, the output tokens (with the end
        token), and the attention weights, one row per output token (rows sum to 1)."""
        source, target, copying = fields[SOURCE], fields[TARGET], model.decoder.copying
        eos, bos = target.eos, target.bos
        device = device_of(model)
        x = [self.encode_user_input(text, fields, f"input {i + 1}", copying) for i, text in enumerate(inputs)]
        y = [torch.tensor(target.encode(text), dtype=torch.long) for text in outputs]
        y_in, _ = pad([torch.cat([torch.tensor([bos]), t]) for t in y], eos)
        words = [source.split(text) for text in inputs] if copying else [None] * len(x)
        with torch.no_grad():
            _, weights = model.decoder(y_in.to(device), model.start(self.user_batch(x, words, target, device)))
        maps = []
        for i, (text, ids) in enumerate(zip(inputs, y)):
            rows = weights[: len(ids) + 1, i, : len(x[i])].cpu()
            written = target.split(outputs[i]) if copying else [target.tokens[t] for t in ids.tolist()]
            maps.append({"input": source.split(text), "output": written + ["</s>"],
                         "weights": [[round(v, 5) for v in row] for row in rows.tolist()]})
        return maps


class Generate(SequenceWriter):
    """Condition to sequence (one-to-many): a class label or a vector sets the decoder's
    initial state. Metrics as for seq2seq."""

    input_field = CONDITION

    def build_model(self, data: Data, cell: CellSpec, embedding_size: Size = 64, hidden_size: Size = 128,
                    num_layers: Layers = 1, dropout: Dropout = 0.0) -> ConditionedModel:
        require(data.fields, "generate", condition=(Labels, Numeric), target=Vocab)
        return ConditionedModel(data.fields[CONDITION], data.fields[TARGET], cell, embedding_size, hidden_size,
                                num_layers, dropout)

    def collate_inputs(self, inputs, device) -> dict:
        return {"x": torch.stack(inputs).to(device)}

    def encode_user_input(self, text, fields, where, copying: bool = False):
        condition = fields[CONDITION]
        if isinstance(condition, Labels):
            if text.strip() not in condition.index:
                shown = ", ".join(condition.names[:12]) + (" ..." if len(condition) > 12 else "")
                raise DataError(f"{where}: unknown condition {text.strip()!r}; the model knows: {shown}")
            return torch.tensor(condition.index[text.strip()])
        values = encode_input(text, condition, where)
        return values.reshape(-1)


def attention_maps(maps: list[dict], out, limit: int = 8) -> None:
    """One heat map per input (the first `limit`): output tokens down, input tokens across."""
    plt = pyplot()
    maps = maps[:limit]
    cols = min(len(maps), 4)
    rows = math.ceil(len(maps) / cols)
    width = max(len(m["input"]) for m in maps)
    height = max(len(m["output"]) for m in maps)
    cell = 0.32
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(max(3.0, cols * (width * cell + 1.2)), max(2.5, rows * (height * cell + 1.0))))
    for ax, m in zip(axes.flat, maps):
        ax.imshow(m["weights"], cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal")
        ax.set_xticks(range(len(m["input"])), [shown(t) for t in m["input"]], fontsize=8)
        ax.set_yticks(range(len(m["output"])), [shown(t) for t in m["output"]], fontsize=8)
        ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False, length=0)
        ax.set_xlabel("input", fontsize=8)
        ax.set_ylabel("output", fontsize=8)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    save(fig, out)


def shown(token: str) -> str:
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(token, token)
