"""A token vocabulary: ids <-> strings, stored in checkpoints as plain data."""

from __future__ import annotations

from collections import Counter

import numpy as np

UNK = "<unk>"
EOS = "<eos>"


class Vocab:
    """Tokens at `level` 'char' or 'word'. Id 0 is `<unk>`; word vocabularies also hold `<eos>`,
    which ends every line."""

    def __init__(self, tokens: list[str], level: str):
        self.tokens = list(tokens)
        self.level = level
        self.index = _Index(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def eos(self) -> int | None:
        return self.index.get(EOS)

    def split(self, text: str) -> list[str]:
        """Text -> tokens, the way the training data was split."""
        if self.level == "char":
            return list(text)
        return text.replace("\n", f" {EOS} ").split()

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
            if word == EOS:
                out.append("\n")
            else:
                out.append(word if not out or out[-1] == "\n" else " " + word)
        return "".join(out)

    def to_state(self) -> dict:
        return {"kind": "vocab", "level": self.level, "tokens": self.tokens}

    @classmethod
    def from_state(cls, state: dict) -> Vocab:
        return cls(state["tokens"], state["level"])

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens and self.level == other.level


class _Index(dict):
    """token -> id, where an unknown token maps to 0 (`<unk>`) without a Python-level branch."""

    def __init__(self, tokens):
        super().__init__((t, i) for i, t in enumerate(tokens))

    def __missing__(self, key):
        return 0


# -- building and encoding, vectorised ------------------------------------------------------

def char_codes(text: str) -> np.ndarray:
    """The Unicode code points of `text` as a uint32 array (one C-level conversion)."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def char_vocab(codes: np.ndarray, min_freq: int = 1, max_vocab: int | None = None) -> Vocab:
    counts = np.bincount(codes, minlength=1) if codes.size else np.zeros(1, dtype=np.int64)
    kept = np.flatnonzero(counts >= min_freq)
    if max_vocab is not None and kept.size > max_vocab - 1:
        kept = kept[np.argsort(-counts[kept], kind="stable")[: max_vocab - 1]]
        kept.sort()
    return Vocab([UNK] + [chr(c) for c in kept], "char")


def encode_chars(codes: np.ndarray, vocab: Vocab) -> np.ndarray:
    """Code points -> ids through a lookup table over all of Unicode; unknown -> 0."""
    table = np.zeros(max(int(codes.max(initial=0)) + 1, 1), dtype=np.int32)
    known = np.array([ord(t) for t in vocab.tokens[1:]], dtype=np.int64)
    known_ids = np.arange(1, len(vocab), dtype=np.int32)
    inside = known < table.size
    table[known[inside]] = known_ids[inside]
    return table[codes]


def words(text: str, lowercase: bool = False) -> list[str]:
    """Whitespace-split words with `<eos>` at the end of every line (the Penn Treebank setup)."""
    if lowercase:
        text = text.lower()
    if text and not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", f" {EOS} ").split()


def word_vocab(tokens: list[str], min_freq: int = 1, max_vocab: int | None = None) -> Vocab:
    counts = Counter(tokens)
    counts.pop(EOS, None)
    counts.pop(UNK, None)
    ranked = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        ranked = ranked[: max(0, max_vocab - 2)]
    return Vocab([UNK, EOS] + ranked, "word")


def encode_words(tokens: list[str], vocab: Vocab) -> np.ndarray:
    return np.fromiter(map(vocab.index.__getitem__, tokens), dtype=np.int32, count=len(tokens))
