"""Building what a dataset keeps from its texts: tokens before the vocabulary exists, and
language-model streams encoded with one (vectorised). The vocabularies themselves, and how
they are built, are `seqcli.vocab`'s; subword models `seqcli.subword`'s."""

from __future__ import annotations

import numpy as np

from seqcli.vocab import EOS, SUBWORD, UNK, Vocab, build, split


def tokens_of(text: str, level: str):
    """What a dataset keeps of one text before the vocabulary exists: its tokens, or for a
    subword level the text (the pieces are learned from the training split)."""
    return text if level in SUBWORD else split(text, level)


def ids_of(value, field: Vocab) -> list[int]:
    """A value kept by `tokens_of`, encoded with the vocabulary."""
    return field.encode(value) if isinstance(value, str) else [field.index[t] for t in value]


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
    """Code points -> ids through a lookup table over the code points present; unknown -> 0."""
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
    vocab = build([tokens], "whitespace", min_freq, max_vocab, specials=(UNK, EOS))
    vocab.lines = True
    return vocab


def encode_words(tokens: list[str], vocab: Vocab) -> np.ndarray:
    return np.fromiter(map(vocab.index.__getitem__, tokens), dtype=np.int32, count=len(tokens))
