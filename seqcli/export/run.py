"""Run a model exported by `seqcli export`, with numpy and onnxruntime alone.

    python run.py --input "some text"            # one output line per input
    python run.py --input-file inputs.txt         # one input per line, read and written as it goes
    python run.py --prime "The " --length 200     # language models
    python run.py --help                          # this model's options

The folder holds the model's graphs (model/*.onnx, or model/*.pt2 read with torch), its
vocabularies and label sets (fields/*.json), and config.json, which says what kind of model
it is and how its graphs are used. Decoding is done here, as seqcli does it: greedy,
sampling with temperature, top-k and top-p (numpy's generator, seeded with --seed), and beam
search with GNMT's length and coverage penalties. Options not given take the values the
model was trained with (config.json's "sample"). A subword vocabulary (bpe, unigram) is read
with the `tokenizers` package, the only other package such a model needs.

Inputs are decoded as `seqcli sample --input-file` decodes them: `--batch-size` at a time,
each window of 8 batches sorted by length (less padding), and the outputs written in input
order as each window is done, so memory holds one window whatever the file's size.
onnxruntime's threads do not spin while they wait (unless --spin), so the runner shares
cores politely.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORD = re.compile(r"\w+|[^\w\s]")


class Failure(Exception):
    """A problem with the input or the options: one line, exit 2."""


# -- the graphs ----------------------------------------------------------------------------------

class Graph:
    """One exported graph: called with numpy arrays by name, returns them by name."""

    def __init__(self, folder: Path, spec: dict, threads: int | None, spin: bool = False):
        self.inputs, self.outputs = spec["inputs"], spec["outputs"]
        path = folder / spec["file"]
        if path.suffix == ".onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # threads that spin between the small products of each step keep cores busy that
            # other processes need; on a machine of its own, spinning makes batch-1 sampling
            # with several threads faster (--spin)
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.run = self._onnx
        else:
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.torch, self.program = torch, torch.export.load(str(path)).module()
            self.run = self._pt2

    def __call__(self, **arrays) -> dict:
        return dict(zip(self.outputs, self.run([arrays[name] for name in self.inputs])))

    def _onnx(self, arrays: list) -> list:
        return self.session.run(None, dict(zip(self.inputs, arrays)))

    def _pt2(self, arrays: list) -> list:
        with self.torch.no_grad():
            out = self.program(*[self.torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]


# -- fields: text and numbers in, text out --------------------------------------------------------

class Field:
    def __init__(self, state: dict, folder: Path, name: str):
        self.kind = state["kind"]
        self.state = state
        if self.kind in ("vocab", "subword"):
            self.tokens, self.level, self.lines = state["tokens"], state["level"], state.get("lines", False)
            self.index = {t: i for i, t in enumerate(self.tokens)}
            self.eos = self.index.get("<eos>")
            self.tokenizer = None
            if self.kind == "subword":
                try:
                    from tokenizers import Tokenizer
                except ImportError:
                    raise Failure("this model's subword vocabulary needs the tokenizers package: "
                                  "pip install tokenizers") from None
                self.tokenizer = Tokenizer.from_file(str(folder / "fields" / f"{name}.tokenizer.json"))
        elif self.kind == "labels":
            self.names = state["names"]
            self.index = {n: i for i, n in enumerate(self.names)}
        else:
            self.dim = state["dim"]

    def split(self, text: str) -> list[str]:
        if self.tokenizer is not None:
            return [self.tokens[i] for i in self.encode(text)]
        if self.lines:
            return text.replace("\n", " <eos> ").split()
        if self.level == "char":
            return list(text)
        return text.split() if self.level == "whitespace" else WORD.findall(text)

    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            return [self.index.get(t, 0) for t in self.split(text)]
        if not self.lines:
            return self.tokenizer.encode(" " + text, add_special_tokens=False).ids if text else []
        ids: list[int] = []
        for i, line in enumerate(text.split("\n")):
            ids += ([self.eos] if i else []) + (self.tokenizer.encode(" " + line, add_special_tokens=False).ids
                                                if line else [])
        return ids

    def unknown(self, text: str) -> list[str]:
        if self.tokenizer is not None:
            out = []
            for line in text.split("\n"):
                encoding = self.tokenizer.encode(" " + line, add_special_tokens=False)
                out += [(" " + line)[a:b] for i, (a, b) in zip(encoding.ids, encoding.offsets) if i == 0]
            return list(dict.fromkeys(out))
        return list(dict.fromkeys(t for t in self.split(text) if t not in self.index))

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.tokenizer is not None:
            if self.lines and self.eos is not None:
                parts, current = [], []
                for i in ids:
                    if i == self.eos:
                        parts.append(current)
                        current = []
                    else:
                        current.append(i)
                return "\n".join(self._decode_line(p) for p in parts + [current])
            return self._decode_line(ids)
        if self.level == "char":
            return "".join("\ufffd" if i == 0 else self.tokens[i] for i in ids)
        out: list[str] = []
        for i in ids:
            word = self.tokens[i]
            if word == "<eos>" and self.lines:
                out.append("\n")
            else:
                out.append(word if not out or out[-1] == "\n" else " " + word)
        return "".join(out)

    def copy_ids(self, tokens: list[str]) -> list[int]:
        """Copy attention: each source token's output id, its id here, or for a token this
        vocabulary lacks, len(vocabulary) + its first position in the source."""
        seen: dict[str, int] = {}
        return [(0 if t in ("<unk>", "<eos>", "<bos>") else self.index.get(t, 0)) or
                len(self.tokens) + seen.setdefault(t, i) for i, t in enumerate(tokens)]

    def copied(self, ids, words: list[str]) -> str:
        """Output ids as text, an id past the vocabulary being the source word it copies."""
        ids, size = [int(i) for i in ids], len(self.tokens)
        if all(i < size for i in ids):
            return self.decode(ids)
        pieces = [self.decode([i]) if i < size else words[i - size] for i in ids]
        return "".join(pieces) if self.level == "char" else " ".join(pieces)

    def _decode_line(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return text[1:] if text.startswith(" ") else text

    def sequence(self, text: str, where: str, unknown_ok: bool = False) -> np.ndarray:
        """An input line: ids (T,) for a vocabulary, values (T, D) for numbers 'a b; c d'.
        `unknown_ok` (a copying model's source): a token the vocabulary lacks is read as <unk>."""
        if self.kind == "numeric":
            try:
                rows = [[float(v) for v in step.replace(",", " ").split()] for step in text.split(";") if step.strip()]
            except ValueError as exc:
                raise Failure(f"{where}: expected numbers ({exc})") from None
            if not rows or any(len(r) != self.dim for r in rows):
                raise Failure(f"{where}: expected steps of {self.dim} numbers ('a b; c d')")
            return np.asarray(rows, dtype=np.float32)
        tokens = self.split(text)
        if not tokens:
            raise Failure(f"{where}: the input is empty")
        unknown = [] if unknown_ok else self.unknown(text)
        if unknown:
            raise Failure(f"{where} has tokens the model never saw in training: "
                          + ", ".join(repr(t) for t in unknown[:10]))
        return np.asarray(self.encode(text), dtype=np.int64)


def known(vocab: Field, prime: str) -> None:
    """A prime made of tokens the model saw in training, or a Failure naming the others."""
    unknown = vocab.unknown(prime)
    if unknown:
        raise Failure("the prime has tokens the model never saw in training: "
                      + ", ".join(repr(t) for t in unknown[:10]))


def padded(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sequences (T_i, ...) -> time-major (T, B, ...) padded with zeros, and lengths (B,)."""
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
    out = np.zeros((int(lengths.max()), len(sequences), *sequences[0].shape[1:]), dtype=sequences[0].dtype)
    for b, s in enumerate(sequences):
        out[: len(s), b] = s
    return out, lengths


# -- choosing tokens -------------------------------------------------------------------------------

def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def next_token(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None,
               rng: np.random.Generator) -> np.ndarray:
    """logits (B, V) -> ids (B,): greedy at temperature 0, else sampled."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.sort(logits, -1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, -1, kind="stable")
        ranked = np.take_along_axis(logits, order, -1)
        probs = np.exp(log_softmax(ranked))
        drop = np.cumsum(probs, -1) - probs > top_p  # the tokens above already hold top_p of the mass
        np.put_along_axis(logits, order, np.where(drop, -np.inf, ranked), -1)
    weights = np.exp(logits - logits.max(-1, keepdims=True))  # the probabilities, unnormalised
    if not np.isfinite(weights).all():
        raise Failure("the model's scores are NaN or infinite; it cannot be sampled")
    cumulative = np.cumsum(weights, -1)
    draws = rng.random(len(weights)) * cumulative[:, -1]
    # the first token whose cumulative weight reaches the draw (a binary search a row)
    chosen = [np.searchsorted(row, draw) for row, draw in zip(cumulative, draws)]
    return np.minimum(np.asarray(chosen, dtype=np.int64), weights.shape[-1] - 1)


# -- the kinds of model ------------------------------------------------------------------------------

class Model:
    def __init__(self, folder: Path = HERE, threads: int | None = None, spin: bool = False):
        self.folder = Path(folder)
        self.config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
        self.kind = self.config["kind"]
        self.graphs = {name: Graph(self.folder, spec, threads, spin) for name, spec in self.config["graphs"].items()}
        self.fields = {name: Field(json.loads((self.folder / "fields" / f"{name}.json").read_text(encoding="utf-8")),
                                   self.folder, name) for name in self.config["fields"]}
        self.use = self.config["use"]

    # language models
    def generate(self, prime: str = "", length: int = 300, temperature: float = 0.8, top_k: int | None = None,
                 top_p: float | None = None, num_samples: int = 1, seed: int | None = None) -> list[str]:
        vocab = self.fields[self.use["field"]]
        drawn = list(self.draw([prime], length, temperature, top_k, top_p, num_samples, seed))
        drawn = np.stack(drawn) if drawn else np.zeros((0, num_samples), dtype=np.int64)  # (length, N)
        return [vocab.decode(vocab.encode(prime) + drawn[:, j].tolist()) for j in range(num_samples)]

    def stream(self, prime: str = "", length: int = 300, temperature: float = 0.8, top_k: int | None = None,
               top_p: float | None = None, num_samples: int = 1, seed: int | None = None):
        """`generate` as it is drawn (as seqcli's language models stream): first the prime,
        then, per token, the text each sample gained (one string per sample)."""
        for step in self.streams([prime], length, temperature, top_k, top_p, num_samples, seed):
            yield step[0]

    def streams(self, primes: list[str], length: int = 300, temperature: float = 0.8, top_k: int | None = None,
                top_p: float | None = None, num_samples: int = 1, seed: int | None = None):
        """Several primes' streams drawn together: per step, each prime's pieces (one string
        per sample)."""
        vocab = self.fields[self.use["field"]]
        for prime in primes:
            known(vocab, prime)
        ids = [vocab.encode(prime) for prime in primes]
        texts = [vocab.decode(i) for i in ids for _ in range(num_samples)]
        drawn: list[list[int]] = [[] for _ in texts]
        yield [texts[p * num_samples:(p + 1) * num_samples] for p in range(len(primes))]
        for token in self.draw(primes, length, temperature, top_k, top_p, num_samples, seed):
            pieces = []
            for row, t in enumerate(token.tolist()):
                drawn[row].append(t)
                if vocab.level == "char":  # a character decodes alone
                    pieces.append(vocab.decode([t]))
                else:  # words and pieces: what the text so far gained (spaces belong between tokens)
                    text = vocab.decode(ids[row // num_samples] + drawn[row])
                    pieces.append(text[len(texts[row]):])
                    texts[row] = text
            yield [pieces[p * num_samples:(p + 1) * num_samples] for p in range(len(primes))]

    def draw(self, primes: list[str], length: int, temperature: float, top_k, top_p, num_samples: int, seed):
        """The tokens drawn after the primes, one array (primes x num_samples,) per step: each
        prime read in rows of its own, then every row drawn at once."""
        vocab, step = self.fields[self.use["field"]], self.graphs["step"]
        rng = np.random.default_rng(seed)
        logits, states = [], []
        for prime in primes:
            known(vocab, prime)
            state = {name: np.zeros((shape[0], num_samples, shape[1]), dtype=np.float32)
                     for name, shape in zip(self.use["states"], self.config["state_shapes"])}
            for token in vocab.encode(prime) or [self.use["start"]]:
                out = step(token=np.full(num_samples, token, dtype=np.int64), **state)
                state = {name: out[f"next_{name}"] for name in state}
            logits.append(out["logits"])
            states.append(state)
        scores = np.concatenate(logits)
        state = {name: np.concatenate([s[name] for s in states], axis=1) for name in self.use["states"]}
        for t in range(length):
            chosen = next_token(scores, temperature, top_k, top_p, rng)
            yield chosen
            if t + 1 < length:
                out = step(token=chosen.astype(np.int64), **state)
                scores = out["logits"]
                state = {name: out[f"next_{name}"] for name in state}

    # sequence writers: seq2seq, generate
    def start(self, inputs: list[str]) -> dict:
        field = self.fields[self.use["input"]]
        if field.kind == "labels":
            ids = []
            for i, text in enumerate(inputs):
                if text.strip() not in field.index:
                    raise Failure(f"input {i + 1}: unknown condition {text.strip()!r}; the model knows: "
                                  + ", ".join(field.names[:12]))
                ids.append(field.index[text.strip()])
            return self.graphs["start"](x=np.asarray(ids, dtype=np.int64))
        copying = self.use.get("copy", False)
        values = [field.sequence(text, f"input {i + 1}", unknown_ok=copying) for i, text in enumerate(inputs)]
        if self.use["input"] == "condition":
            return self.graphs["start"](x=np.stack([v.reshape(-1) for v in values]))
        x, lengths = padded(values)
        if copying:
            target = self.fields[self.use["field"]]
            copy, _ = padded([np.asarray(target.copy_ids(field.split(text)), dtype=np.int64) for text in inputs])
            return {**self.graphs["start"](x=x, lengths=lengths, copy=copy), "copy": copy}
        return self.graphs["start"](x=x, lengths=lengths)

    def write(self, inputs: list[str], beam_size: int = 1, n_best: int = 1, max_length: int = 100,
              length_penalty: float = 0.0, temperature: float = 0.0, top_k: int | None = None,
              top_p: float | None = None, seed: int | None = None, coverage_penalty: float = 0.0) -> list[dict]:
        if n_best > beam_size:
            raise Failure(f"--n-best: must be <= beam_size ({beam_size})")
        if coverage_penalty and beam_size == 1:
            raise Failure("--coverage-penalty: ranks the hypotheses of a beam: give --beam-size > 1 with it")
        if coverage_penalty and "attention" not in self.graphs["step"].outputs:
            raise Failure("--coverage-penalty: needs a model that attends to its source (model.attention)")
        target = self.fields[self.use["field"]]
        state = self.start(inputs)
        if beam_size > 1:
            results = self.beam_search(state, len(inputs), max_length, beam_size, n_best, length_penalty,
                                       coverage_penalty)
        else:
            rng = np.random.default_rng(seed)
            results = [[h] for h in self.decode(state, len(inputs), max_length, temperature, top_k, top_p, rng)]
        words = [self.fields[self.use["input"]].split(t) for t in inputs] if self.use.get("copy", False) else None

        def text(b: int, ids) -> str:  # with copy attention, ids past the vocabulary are source words
            return target.copied(ids, words[b]) if words else target.decode(ids)

        return [ranked([(text(b, tokens), score) for tokens, score in r], listed=n_best > 1)
                for b, r in enumerate(results)]

    def _step(self, tokens: np.ndarray, state: dict) -> tuple[np.ndarray, dict, np.ndarray | None]:
        out = self.graphs["step"](token=tokens, **state)
        return (out["logits"], {**state, **{name: out[f"next_{name}"] for name in self.use["carried"]}},
                out.get("attention"))

    def _select(self, state: dict, index: np.ndarray, names) -> dict:
        axis = self.use["batch_axis"]
        return {**state, **{n: np.take(state[n], index, axis=axis[n]) for n in names}}

    def decode(self, state: dict, batch: int, max_length: int, temperature: float, top_k, top_p, rng) -> list:
        """One sequence per input: greedy at temperature 0, else sampled."""
        bos, eos = self.use["bos"], self.use["eos"]
        tokens = np.full(batch, bos, dtype=np.int64)
        finished = np.zeros(batch, dtype=bool)
        logprob = np.zeros(batch, dtype=np.float32)
        steps = []
        for _ in range(max_length):
            logits, state, _ = self._step(tokens, state)
            chosen = np.where(finished, eos, next_token(logits, temperature, top_k, top_p, rng)).astype(np.int64)
            picked = np.take_along_axis(log_softmax(logits), chosen[:, None], 1)[:, 0]
            logprob = logprob + np.where(finished, 0.0, picked).astype(np.float32)
            steps.append(chosen)
            finished |= chosen == eos
            if finished.all():
                break
            tokens = chosen
        out = np.stack(steps, 1).tolist()
        hyps = []
        for b, seq in enumerate(out):
            n = seq.index(eos) if eos in seq else len(seq)
            hyps.append((seq[:n], float(logprob[b])))
        return hyps

    def beam_search(self, state: dict, batch: int, max_length: int, K: int, n_best: int, alpha: float,
                    beta: float = 0.0) -> list:
        """As seqcli's: all rows and beams advance as one batch; a row leaves once its n_best-th
        finished score beats what its live beams could still reach. `beta`: GNMT's coverage
        penalty, beta * sum log(min(attention received, 1)) over each source's own positions."""
        bos, eos, inf = self.use["bos"], self.use["eos"], -np.inf
        every = list(state)
        state = self._select(state, np.repeat(np.arange(batch), K), every)
        scores = np.full((batch, K), inf, dtype=np.float32)
        scores[:, 0] = 0.0
        history = np.zeros((batch, K, 0), dtype=np.int64)
        tokens = np.full(batch * K, bos, dtype=np.int64)
        rows = list(range(batch))
        finished: list[list] = [[] for _ in range(batch)]
        bar = [inf] * batch
        kindest = penalty(max_length + 1, alpha)
        coverage = None  # (A, K, S): the attention each live beam has given each source position

        def unread(a: int, k: int) -> float:  # the coverage penalty of row a's beam k
            if not beta:
                return 0.0
            own = state["mask"][:, a * K + k]  # (S,) True on the row's own source positions
            return beta * float(np.log(np.clip(coverage[a, k][own], 1e-10, 1.0)).sum())

        for _ in range(max_length):
            logits, state, weights = self._step(tokens, state)
            A, V = scores.shape[0], logits.shape[-1]
            if beta:
                coverage = weights.astype(np.float32).reshape(A, K, -1) + (coverage if coverage is not None else 0.0)
            candidates = (scores[:, :, None] + log_softmax(logits).reshape(A, K, V)).reshape(A, -1)
            width = min(2 * K, K * V)
            top_index = topk(candidates, width)
            top_scores = np.take_along_axis(candidates, top_index, -1)
            beam, token = top_index // V, top_index % V
            real = top_scores > inf
            live = real & (token != eos)
            live_above = np.cumsum(live, -1) - live
            ending = real & (token == eos) & (live_above < K)
            for a, j in zip(*np.nonzero(ending)):
                b, s = rows[a], float(top_scores[a, j])
                seq = history[a, beam[a, j]].tolist()
                finished[b].append((seq, s / penalty(len(seq) + 1, alpha) + unread(a, beam[a, j])))
                if len(finished[b]) >= n_best:
                    bar[b] = sorted((h[1] for h in finished[b]), reverse=True)[n_best - 1]
            masked = np.where(live, top_scores, inf)
            pick = topk(masked, K)
            new_scores = np.take_along_axis(masked, pick, -1)
            best_alive = new_scores[:, 0] / kindest
            searching = [a for a in range(A) if best_alive[a] > inf and bar[rows[a]] < best_alive[a]]
            if not searching:
                scores = scores[:0]
                break
            keep = np.asarray(searching)
            new_scores, pick, beam, token = new_scores[keep], pick[keep], beam[keep], token[keep]
            rows = [rows[a] for a in searching]
            flat = (keep[:, None] * K + np.take_along_axis(beam, pick, 1)).reshape(-1)
            moved = len(searching) < A
            state = self._select(state, flat, every if moved else self.use["carried"])
            new_token = np.take_along_axis(token, pick, 1)
            history = np.concatenate([history.reshape(A * K, -1)[flat].reshape(len(rows), K, -1),
                                      new_token[..., None]], -1)
            if beta:
                coverage = coverage.reshape(A * K, -1)[flat].reshape(len(rows), K, -1)
            scores = new_scores
            tokens = new_token.reshape(-1).astype(np.int64)
        for a, b in enumerate(rows[: scores.shape[0]]):
            for k, s in enumerate(scores[a].tolist()):
                if s > inf:
                    seq = history[a, k].tolist()
                    finished[b].append((seq, s / penalty(len(seq), alpha) + unread(a, k)))
        for b in range(batch):
            finished[b].sort(key=lambda h: -h[1])
            finished[b] = finished[b][:n_best]
        return finished

    # one pass over the inputs: classify, tag, forecast, glimpse, draw
    def sequences(self, inputs: list[str]) -> dict:
        field = self.fields[self.use["input"]]
        values = [field.sequence(text, f"input {i + 1}") for i, text in enumerate(inputs)]
        if "image" in self.use:
            size = tuple(self.use["image"])
            for i, v in enumerate(values):
                if v.shape != size:
                    raise Failure(f"input {i + 1}: an image of {v.shape[0]} rows of {v.shape[1]} values; the model "
                                  f"reads {size[0]} rows of {size[1]}")
            return {"x": np.stack(values)}
        x, lengths = padded(values)
        return {"x": x, "lengths": lengths}

    def labels(self, inputs: list[str], n_best: int = 1) -> list[dict]:
        logits = self.graphs["model"](**self.sequences(inputs))["logits"]
        probs = np.exp(log_softmax(logits))
        names = self.fields[self.use["labels"]].names
        top = topk(probs, min(n_best, probs.shape[-1]))
        return [labelled([(names[i], probs[b, i]) for i in row]) for b, row in enumerate(top)]

    def tags(self, inputs: list[str]) -> list[str]:
        batch = self.sequences(inputs)
        best = self.graphs["model"](**batch)["logits"].argmax(-1).T  # (B, T)
        names, field = self.fields[self.use["labels"]].names, self.fields[self.use["input"]]
        lines = []
        for text, row, n in zip(inputs, best.tolist(), batch["lengths"].tolist()):
            tags = [names[t] for t in row[:n]]
            if field.kind != "numeric" and field.level != "char":
                lines.append(" ".join(f"{tok}/{tag}" for tok, tag in zip(field.split(text), tags)))
            else:
                lines.append(("" if all(len(t) == 1 for t in tags) else " ").join(tags))
        return lines

    def values(self, inputs: list[str]) -> list[str]:
        values = self.graphs["model"](**self.sequences(inputs))["values"]
        return ["; ".join(" ".join(f"{v:.6g}" for v in row) for row in rows.reshape(len(rows), -1).tolist())
                for rows in values]

    def image(self, inputs: list[str]) -> list[str]:
        field = self.fields[self.use["labels"]]
        ids = []
        for i, text in enumerate(inputs):
            if text.strip() not in field.index:
                raise Failure(f"input {i + 1}: unknown class {text.strip()!r}; the model knows: "
                              + ", ".join(field.names))
            ids.append(field.index[text.strip()])
        images = self.graphs["model"](labels=np.asarray(ids, dtype=np.int64))["images"]
        shades = self.use["shades"]
        shade = (lambda row: "".join(shades[min(int(v * len(shades)), len(shades) - 1)] * 2 for v in row))
        return [f"class {field.names[k]}:\n" + "\n".join(shade(row) for row in image.tolist()) + "\n"
                for k, image in zip(ids, images)]

    def predict(self, inputs: list[str], **options) -> list[str]:
        """One output per input, for every kind but language models, as `seqcli sample`
        prints it; options not given take the values the model was trained with."""
        return [p["text"] for p in self.predictions(inputs, **options)]

    def predictions(self, inputs: list[str], **options) -> list[dict]:
        """As `predict`, typed as seqcli's `Prediction.to_data()`: per input its text and its
        hypotheses [{output, score}], best first."""
        if not inputs:
            raise Failure("give inputs: --input TEXT (repeatable) or --input-file FILE")
        run = getattr(self, RUNS[self.kind])
        return [p if isinstance(p, dict) else {"text": p, "hypotheses": [{"output": p, "score": None}]}
                for p in run(inputs, **self.options(run, options))]

    def predict_stream(self, items, batch_size: int = 64, window: int = 8, **options):
        """Outputs for an iterable of (where, text) inputs: a list of (text, prediction) per
        window of `batch_size * window` inputs, in input order, yielded as each window is done. Inside a window the
        inputs are decoded in batches of similar length, then put back in order. An input
        the model cannot take is a Failure naming its `where` (for a file, `path:line`)."""
        group: list = []
        for item in items:
            group.append(item)
            if len(group) == batch_size * window:
                yield self._window(group, batch_size, options)
                group = []
        if group:
            yield self._window(group, batch_size, options)

    def _window(self, group: list, batch_size: int, options: dict) -> list[tuple[str, dict]]:
        order = sorted(range(len(group)), key=lambda i: len(group[i][1]))
        out: list = [None] * len(group)
        for start in range(0, len(order), batch_size):
            part = order[start : start + batch_size]
            try:
                lines = self.predictions([group[i][1] for i in part], **options)
            except Failure as exc:
                if not str(exc).startswith("input "):
                    raise
                for where, text in group:  # the first input it is about, in input order
                    try:
                        self.predict([text], **options)
                    except Failure as alone:
                        raise Failure(f"{where}: {re.sub(r'^input 1:? ?', '', str(alone))}") from None
                raise
            for i, prediction in zip(part, lines):
                out[i] = (group[i][1], prediction)
        return out

    def sample(self, **options) -> list[str]:
        """A language model's samples; options not given take the values it was trained with."""
        return self.generate(**self.options(self.generate, options))

    def options(self, method, given: dict) -> dict:
        import inspect

        accepted = inspect.signature(method).parameters
        defaults = {k: v for k, v in self.config.get("sample", {}).items() if k in accepted and k != "inputs"}
        return {**defaults, **given}


def ranked(hypotheses: list[tuple[str, float]], listed: bool) -> dict:
    """A writer's prediction (seqcli's `Prediction.ranked`): the best output's text, or,
    `listed` (n-best), a `text<TAB>score` line per hypothesis with a blank line after them."""
    text = "\n".join(f"{o}\t{s:.4f}" for o, s in hypotheses) + "\n" if listed else hypotheses[0][0]
    return {"text": text, "hypotheses": [{"output": o, "score": float(s)} for o, s in hypotheses]}


def labelled(hypotheses: list[tuple[str, float]]) -> dict:
    """Labels with their probabilities on one line (seqcli's `Prediction.labelled`)."""
    return {"text": "\t".join(f"{o}\t{s:.4f}" for o, s in hypotheses),
            "hypotheses": [{"output": o, "score": float(s)} for o, s in hypotheses]}


def render(source: str | None, prediction: dict) -> str:
    """--json: an output as one line of JSON (input, text, hypotheses), as seqcli sample --json writes it."""
    return json.dumps({**({"input": source} if source is not None else {}), **prediction}, ensure_ascii=False)


def topk(values: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k largest values of each row, largest first (ties: lower index first)."""
    return np.argsort(-values, -1, kind="stable")[:, :k]


def penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty ((5 + length) / 6) ** alpha."""
    return ((5 + length) / 6) ** alpha


# -- the command line --------------------------------------------------------------------------------

RUNS = {"generator": "generate", "writer": "write", "labels": "labels", "tags": "tags", "values": "values",
        "image": "image"}  # kind -> the Model method that decodes it


def applied(kind: str) -> list[str]:
    """The sample options this runner applies for a kind: the keyword arguments of its method."""
    import inspect

    return [name for name in inspect.signature(getattr(Model, RUNS[kind])).parameters if name not in ("self", "inputs")]


def runner_options(config: dict) -> dict:
    """The options run.py takes: those of the task's `sample` signature (config.json's
    "options": JSON Schema types, bounds, defaults, written by seqcli export) that it applies."""
    schemas = config.get("options") or {}
    return {name: schemas[name] for name in applied(config["kind"]) if name in schemas}


def schema_type(schema: dict) -> str:
    """The JSON Schema type of an option: integer, number, string or boolean (null aside)."""
    kinds = [s.get("type") for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return kinds[0] if kinds else "string"


def boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"give true or false, got {text!r}")
    return text.lower() == "true"


def option_type(schema: dict):
    """The argparse type that reads an option of this schema."""
    return {"integer": int, "number": float, "boolean": boolean}.get(schema_type(schema), str)


def describe(schema: dict) -> str:
    """An option's type and bounds, as `seqcli sample RUN --help` shows them: 'integer >= 1, <= 1000'."""
    bounds = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"][:1]
    words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    limits = [f"{word} {bounds[0][key]:g}" for key, word in words.items() if bounds and key in bounds[0]]
    return schema_type(schema) + (" " + ", ".join(limits) if limits else "")


MAX_LINE = 1 << 20  # characters in one input line, as seqcli sample takes


def check_input_file(path: str) -> None:
    """--input-file is '-' or a regular file that can be read: a folder, a device (/dev/zero)
    or a FIFO is refused before anything is decoded."""
    import os
    import stat

    if path == "-":
        return
    try:
        info = os.stat(path)
    except OSError as exc:
        raise Failure(f"--input-file {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise Failure(f"--input-file {path}: is {kind_of(info.st_mode)}, not a regular file")


def read_inputs(args):
    """(where, text) for each --input, then each non-blank line of --input-file ('-': stdin),
    read as it is used; a line over MAX_LINE characters or not UTF-8 is a Failure naming it."""
    for i, text in enumerate(args.input or []):
        yield f"input {i + 1}", text
    if not args.input_file:
        return
    name = "<stdin>" if args.input_file == "-" else args.input_file
    stream = sys.stdin.buffer if args.input_file == "-" else open(args.input_file, "rb")  # noqa: SIM115
    try:
        number = 0
        while True:
            raw = stream.readline(4 * MAX_LINE + 1)
            if not raw:
                return
            number += 1
            too_long = Failure(f"{name}:{number}: a line over {MAX_LINE:,} characters; split it")
            if len(raw) > 4 * MAX_LINE:  # more bytes than MAX_LINE characters can take
                raise too_long
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Failure(f"{name}:{number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
            if len(line.rstrip("\r\n")) > MAX_LINE:
                raise too_long
            if line.strip():
                yield f"{name}:{number}", line.rstrip("\r\n")
    finally:
        if args.input_file != "-":
            stream.close()


def kind_of(mode: int) -> str:
    import stat

    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "not a regular file")


def check_output(output: str, force: bool, input_file: str | None) -> Path:
    """-o is checked before the model is loaded, as seqcli sample checks it: never the input
    (the same file through any link, or what stdin reads), never a folder, device or FIFO,
    its folder must exist, and a file that exists is replaced only with --force. Returns the
    file to write (a link: the file it names)."""
    import os
    import stat

    real = Path(os.path.realpath(output))
    try:
        info = os.stat(real)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise Failure(f"-o {output}: cannot check it ({exc.strerror})") from None
    if info is not None:
        if input_file is not None:
            try:
                source = os.fstat(0) if input_file == "-" else os.stat(input_file)
            except OSError:
                source = None
            if source is not None and (source.st_dev, source.st_ino) == (info.st_dev, info.st_ino):
                what = "the standard input" if input_file == "-" else f"the input {input_file}"
                raise Failure(f"-o {output}: is {what}; writing it would destroy the input (choose another file)")
        if not stat.S_ISREG(info.st_mode):
            raise Failure(f"-o {output}: is {kind_of(info.st_mode)}, not a regular file; outputs are written only to "
                          f"regular files")
        if not force:
            raise Failure(f"-o {output} already exists; pass --force to replace it")
    if not real.parent.is_dir():
        raise Failure(f"-o {output}: folder {Path(output).parent} does not exist")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise Failure(f"-o {output}: folder {Path(output).parent} is not writable")
    return real


def write_outputs(chunks, output: Path | None, sep: str, shown: str = "") -> int:
    """Each chunk's lines as they come, to stdout or, whole or not at all, to `output` (a
    temporary file beside it, created anew, renamed into place once every line is written)."""
    import os

    if output is None:
        count = 0
        for lines in chunks:
            sys.stdout.write("".join(line + "\n" for line in lines) if sep == "\n" else
                             ("\n\n" if count else "") + sep.join(lines) + "\n")
            sys.stdout.flush()
            count += len(lines)
        return count
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    count = 0
    try:
        try:
            with open(temporary, "x", encoding="utf-8") as f:
                for lines in chunks:
                    f.write("".join(line + "\n" for line in lines) if sep == "\n" else sep.join(lines) + "\n")
                    count += len(lines)
                f.flush()
                os.fsync(f.fileno())
            if count:
                os.replace(temporary, output)
        except OSError as exc:
            raise Failure(f"-o {shown or output}: cannot write it ({exc.strerror or exc}); nothing was replaced") \
                from None
    finally:
        temporary.unlink(missing_ok=True)
    return count


def check_options(options: dict, config: dict, kind: str, named=lambda name: "--" + name.replace("_", "-")) -> None:
    """Each option within the bounds `seqcli sample` checks (config.json's "options", the
    task's signature as JSON Schema): a Failure naming it otherwise (`named`: how, its flag by
    default; the Failure's `option` is its name)."""
    import math

    def fail(name: str, message: str):
        failure = Failure(f"{named(name)}: {message}")
        failure.option = name
        return failure

    schemas = config.get("options") or {}
    for name, value in options.items():
        schema = schemas.get(name, {})
        kinds = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(name, f"must be a finite number, got {value}")
        if not kinds or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        bound = kinds[0]
        for key, ok, word in (("minimum", lambda v, b: v >= b, ">="), ("exclusiveMinimum", lambda v, b: v > b, ">"),
                              ("maximum", lambda v, b: v <= b, "<="), ("exclusiveMaximum", lambda v, b: v < b, "<")):
            if key in bound and not ok(value, bound[key]):
                raise fail(name, f"must be {word} {bound[key]:g}, got {value:g}")
    if kind == "writer" and (options.get("n_best") or 1) > (options.get("beam_size") or 1):
        raise fail("n_best", f"must be <= {named('beam_size')} ({options.get('beam_size', 1)}), got {options['n_best']}")


def main(argv: list[str] | None = None) -> int:
    model_folder = HERE
    config = json.loads((model_folder / "config.json").read_text(encoding="utf-8"))
    kind, defaults = config["kind"], config.get("sample", {})
    parser = argparse.ArgumentParser(description=f"{config.get('description') or config['task']} "
                                                 f"(exported by seqcli {config['seqcli_version']})")
    if kind != "generator":
        parser.add_argument("--input", "-i", action="append", help="an input (repeat for several)")
        parser.add_argument("--input-file", help="one input per line ('-' for stdin)")
    taken = runner_options(config)
    for name, schema in taken.items():
        default = defaults.get(name, schema.get("default"))
        parser.add_argument("--" + name.replace("_", "-"), type=option_type(schema), default=default,
                            help=f"{describe(schema)} (default: {default})")
    parser.add_argument("--output", "-o", help="write the outputs here instead of stdout")
    if kind != "generator":
        parser.add_argument("--json", action="store_true", help="each output as a line of JSON: input, text, "
                                                                "hypotheses (output, score), as seqcli sample --json")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")
    if kind != "generator":
        parser.add_argument("--batch-size", type=int, default=64, help="inputs decoded together (default: 64)")
    parser.add_argument("--threads", type=int, help="compute threads (default: onnxruntime's)")
    parser.add_argument("--spin", action="store_true", help="let idle compute threads spin (faster batch-1 "
                                                            "sampling on a machine of its own; busier cores)")
    args = parser.parse_args(argv)
    options = {name: getattr(args, name) for name in taken if getattr(args, name) is not None}
    try:
        check_options(options, config, kind)
        batch_size = getattr(args, "batch_size", None)  # a generator has none
        if batch_size is not None and not 1 <= batch_size <= 100_000:
            raise Failure(f"--batch-size: must be >= 1 and <= 100000, got {batch_size}")
        if args.threads is not None and not 1 <= args.threads <= 1024:
            raise Failure(f"--threads: must be >= 1 and <= 1024, got {args.threads}")
        input_file = getattr(args, "input_file", None)
        if input_file is not None:
            check_input_file(input_file)
        output = check_output(args.output, args.force, input_file) if args.output else None
        model = Model(model_folder, args.threads, args.spin)
        if kind == "generator":
            write_outputs([model.generate(**options)], output, "\n\n", args.output)
        elif not write_outputs(([render(source, p) if args.json else p["text"] for source, p in window]
                                for window in model.predict_stream(read_inputs(args), args.batch_size, **options)),
                               output, "\n",
                               args.output or ""):
            raise Failure("give inputs: --input TEXT (repeatable) or --input-file FILE")
    except (Failure, OSError, UnicodeDecodeError, MemoryError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: {why}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the runtime failing (out of memory, a graph error): one line
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: the model failed: {why[:300]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
