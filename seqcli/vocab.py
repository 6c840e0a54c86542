"""Vocabularies (token ids <-> strings) and label sets, stored in checkpoints as plain data."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from seqcli.subword import require_tokenizers, train_subword

UNK = "<unk>"
EOS = "<eos>"
BOS = "<bos>"
LEVELS = ("char", "whitespace", "word")
SUBWORD = ("bpe", "unigram")  # learned vocabularies (the `tokenizers` library, the `subword` extra)
_WORD = re.compile(r"\w+|[^\w\s]")


def lines(text: str, keepends: bool = False) -> list[str]:
    """The lines of a text, split at '\n' alone (a '\r' before it belongs to the break), as a
    file's lines are: never at the other characters str.splitlines() takes for breaks (form
    feeds, U+2028, ...), which are text like any other."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    if keepends:
        return [p + "\n" for p in parts[:-1]] + ([parts[-1] + ("\n" if text.endswith("\n") else "")] if parts else [])
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def split(text: str, level: str) -> list[str]:
    """Tokens of one line: characters, whitespace-separated pieces, or words and punctuation."""
    if level == "char":
        return list(text)
    if level == "whitespace":
        return text.split()
    return _WORD.findall(text)


class Vocab:
    """Tokens split at `level` ('char', 'whitespace' or 'word'). Id 0 is `<unk>`.

    `lines=True` (word-level language models) makes `<eos>` stand for the end of each line."""

    def __init__(self, tokens: list[str], level: str, lines: bool = False):
        self.tokens = list(tokens)
        self.level = level
        self.lines = lines
        self.index = _Index(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    @staticmethod
    def build(values, level: str, min_freq: int = 1, max_vocab: int | None = None,
              specials: tuple[str, ...] = (UNK,), vocab_size: int = 8000) -> Vocab:
        """A vocabulary from a training split: `values` are token lists for the levels 'char',
        'whitespace' and 'word' (kept: `min_freq` occurrences or more, the `max_vocab` most
        frequent, `specials` first), or the texts themselves for 'bpe' and 'unigram'
        (`vocab_size` pieces learned with the `subword` extra)."""
        return make_vocab(values, level, min_freq, max_vocab, specials, vocab_size)

    @property
    def eos(self) -> int | None:
        return self.index.get(EOS)

    @property
    def bos(self) -> int | None:
        return self.index.get(BOS)

    def split(self, text: str) -> list[str]:
        """Text -> tokens, the way the training data was split."""
        if self.lines:
            return text.replace("\n", f" {EOS} ").split()
        return split(text, self.level)

    def unknown(self, text: str) -> list[str]:
        """The tokens of `text` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(t for t in self.split(text) if t not in self.index))

    def encode(self, text: str) -> list[int]:
        return [self.index[t] for t in self.split(text)]

    def decode(self, ids) -> str:
        if self.level == "char":
            return "".join("\ufffd" if i == 0 else self.tokens[i] for i in ids)
        out: list[str] = []
        for i in ids:
            word = self.tokens[i]
            if word == EOS and self.lines:
                out.append("\n")
            else:
                out.append(word if not out or out[-1] == "\n" else " " + word)
        return "".join(out)

    def to_state(self) -> dict:
        return {"kind": "vocab", "level": self.level, "lines": self.lines, "tokens": self.tokens}

    @classmethod
    def from_state(cls, state: dict) -> Vocab:
        return cls(state["tokens"], state["level"], state.get("lines", False))

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and (self.tokens, self.level, self.lines) == (other.tokens, other.level, other.lines)


class Subword(Vocab):
    """A subword vocabulary learned from the training split: byte-pair encoding (Sennrich et
    al., 2016) or a unigram language model (Kudo, 2018), trained by the Hugging Face
    `tokenizers` library. Its ids are the tokenizer's; the tokenizer itself (`model`, JSON) is
    part of the vocabulary, so a checkpoint holds everything sampling needs. Pieces mark a
    preceding space with '▁', so decoding gives back the text exactly (characters never
    seen in training become `<unk>`)."""

    def __init__(self, tokens: list[str], level: str, model: str, lines: bool = False):
        super().__init__(tokens, level, lines)
        self.model = model
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            tokenizers = require_tokenizers()
            try:
                self._tokenizer = tokenizers.Tokenizer.from_str(self.model)
            except Exception as exc:  # a damaged or hand-edited tokenizer
                from seqcli.errors import DataError

                raise DataError(f"the {self.level} tokenizer stored with this vocabulary cannot be read: {exc}") from None
        return self._tokenizer

    def split(self, text: str) -> list[str]:
        return [self.tokens[i] for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        if not self.lines:
            return self._encode_line(text)
        ids: list[int] = []
        for i, line in enumerate(text.split("\n")):  # <eos> where each line break was
            ids += ([self.eos] if i else []) + self._encode_line(line)
        return ids

    def encode_lines(self, lines: list[str]) -> list[list[int]]:
        """Many lines at once (the tokenizer works through them in parallel)."""
        return [e.ids for e in self.tokenizer.encode_batch([" " + line for line in lines], add_special_tokens=False)]

    def _encode_line(self, line: str) -> list[int]:
        return self.tokenizer.encode(" " + line, add_special_tokens=False).ids if line else []

    def unknown(self, text: str) -> list[str]:
        """The characters of `text` the tokenizer has no piece for."""
        out = []
        for line in text.split("\n"):
            encoding = self.tokenizer.encode(" " + line, add_special_tokens=False)
            out += [(" " + line)[a:b] for i, (a, b) in zip(encoding.ids, encoding.offsets) if i == 0]
        return list(dict.fromkeys(out))

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
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

    def _decode_line(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return text[1:] if text.startswith(" ") else text

    def to_state(self) -> dict:
        return {**super().to_state(), "kind": "subword", "model": self.model}

    @classmethod
    def from_state(cls, state: dict) -> Subword:
        return cls(state["tokens"], state["level"], state["model"], state.get("lines", False))

    def __eq__(self, other) -> bool:
        return isinstance(other, Subword) and super().__eq__(other) and self.model == other.model

    __hash__ = None


def subword_vocab(texts, level: str, vocab_size: int, specials: tuple[str, ...] = (UNK,),
                  lines: bool = False) -> Subword:
    """A BPE or unigram vocabulary learned from the lines of a training split (`seqcli.subword`);
    `lines`: the texts are lines of a stream, each ending in <eos>."""
    specials = list(specials) + ([EOS] if lines and EOS not in specials else [])
    tokens, model = train_subword(texts, level, vocab_size, specials, UNK)
    return Subword(tokens, level, model, lines)


def make_vocab(values, level: str, min_freq: int = 1, max_vocab: int | None = None,
               specials: tuple[str, ...] = (UNK,), vocab_size: int = 8000) -> Vocab:
    """A vocabulary for one side of a dataset: `values` are token lists (char, whitespace,
    word) or, for a subword level, the texts themselves."""
    if level in SUBWORD:
        return subword_vocab(values, level, vocab_size, specials)
    return build(values, level, min_freq, max_vocab, specials)


class Labels:
    """A closed set of class labels (no unknown): names <-> ids."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def to_state(self) -> dict:
        return {"kind": "labels", "names": self.names}

    @classmethod
    def from_state(cls, state: dict) -> Labels:
        return cls(state["names"])

    def __eq__(self, other) -> bool:
        return isinstance(other, Labels) and self.names == other.names


class Numeric:
    """Real-valued vectors of `dim` columns, with the training split's mean and std (for
    scaling). `last_of`, for a forecast target, gives for each target column the input
    column it continues (the naive last-value forecast); None means there is none."""

    def __init__(self, dim: int, mean: list[float], std: list[float], names: list[str] | None = None,
                 last_of: list[int] | None = None, steps: int | None = None):
        self.dim, self.mean, self.std = dim, list(mean), list(std)
        self.names = list(names) if names else [f"x{i}" for i in range(dim)]
        self.last_of = last_of
        self.steps = steps  # a fixed number of steps (a forecast's horizon), if any

    def to_state(self) -> dict:
        return {"kind": "numeric", "dim": self.dim, "mean": self.mean, "std": self.std, "names": self.names,
                "last_of": self.last_of, "steps": self.steps}

    @classmethod
    def from_state(cls, state: dict) -> Numeric:
        return cls(state["dim"], state["mean"], state["std"], state["names"], state.get("last_of"), state.get("steps"))

    @classmethod
    def fit(cls, rows: np.ndarray, names: list[str] | None = None, last_of: list[int] | None = None,
            steps: int | None = None) -> Numeric:
        """Statistics of rows (N, dim); a constant column gets std 1."""
        rows = np.asarray(rows, dtype=np.float64)
        mean = rows.mean(0)
        std = rows.std(0)
        std[std < 1e-8] = 1.0
        return cls(rows.shape[1], mean.tolist(), std.tolist(), names, last_of, steps)

    def __eq__(self, other) -> bool:
        return isinstance(other, Numeric) and self.to_state() == other.to_state()


FIELD_TYPES = {"vocab": Vocab, "subword": Subword, "labels": Labels, "numeric": Numeric}


def field_to_state(value):
    """A field as plain data for a checkpoint (vocabularies and label sets know how)."""
    return value.to_state() if hasattr(value, "to_state") else value


def field_from_state(state):
    """A field back from plain data, its shape checked first (a damaged or crafted state is a
    ValueError saying what is wrong)."""
    if isinstance(state, dict) and state.get("kind") in FIELD_TYPES:
        problem = _state_problem(state)
        if problem:
            raise ValueError(f"{state['kind']}: {problem}")
        return FIELD_TYPES[state["kind"]].from_state(state)
    return state


def _state_problem(state: dict) -> str | None:
    import math

    def strings(value) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def numbers(value, n) -> bool:
        return isinstance(value, list) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)

    kind = state["kind"]
    if kind in ("vocab", "subword"):
        if not strings(state.get("tokens")) or not state["tokens"]:
            return "tokens must be a non-empty list of strings"
        if state.get("level") not in LEVELS + SUBWORD or not isinstance(state.get("lines", False), bool):
            return f"level must be one of {', '.join(LEVELS + SUBWORD)}"
        if kind == "subword" and not isinstance(state.get("model"), str):
            return "model must be the tokenizer's JSON"
    elif kind == "labels":
        if not strings(state.get("names")) or not state["names"]:
            return "names must be a non-empty list of strings"
    else:
        dim = state.get("dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 1 << 20:
            return "dim must be a positive integer"
        if not numbers(state.get("mean"), dim) or not numbers(state.get("std"), dim) or \
                not all(v > 0 for v in state["std"]):
            return f"mean and std must be {dim} finite numbers (std > 0)"
        if state.get("names") is not None and not (strings(state["names"]) and len(state["names"]) == dim):
            return f"names must be {dim} strings"
        last = state.get("last_of")
        if last is not None and not (isinstance(last, list) and all(
                v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in last)):
            return "last_of must be a list of column numbers"
        steps = state.get("steps")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            return "steps must be a positive integer"
    return None


class _Index(dict):
    """token -> id, where an unknown token maps to 0 (`<unk>`) without a Python-level branch."""

    def __init__(self, tokens):
        super().__init__((t, i) for i, t in enumerate(tokens))

    def __missing__(self, key):
        return 0


def build(token_lists, level: str, min_freq: int = 1, max_vocab: int | None = None,
          specials: tuple[str, ...] = (UNK,)) -> Vocab:
    """A vocabulary from tokenised examples: specials first, then by frequency."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    for s in specials:
        counts.pop(s, None)
    ranked = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        ranked = ranked[: max(0, max_vocab - len(specials))]
    return Vocab(list(specials) + ranked, level)
