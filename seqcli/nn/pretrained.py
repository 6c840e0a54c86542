"""`model.embeddings`: word vectors trained elsewhere (word2vec, GloVe, fastText's .vec) as
the first rows of a model's vocabulary embeddings.

A layer that embeds a vocabulary is a `VocabEmbedding` (an `nn.Embedding` that knows its
`Vocab`); at the start of a new run every such layer gets the file's vector for each of its
tokens the file has, and keeps what `model.init` gave the others. `freeze: true` keeps
those layers fixed in training (on resume too: the weights come from the checkpoint, the
file is not read again).

Files: text, one `word v1 ... vD` per line, with (word2vec, fastText) or without (GloVe) a
first line `COUNT D`; or word2vec's binary format (`COUNT D` then, per word, the word, a
space and D little-endian float32). Which one is found by reading the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import torch
from torch import nn

from seqcli.errors import ConfigError
from seqcli.schema import File
from seqcli.vocab import Vocab

MAX_DIM = 65536
MAX_WORD = 10_000  # bytes in one word of a binary file


class VocabEmbedding(nn.Embedding):
    """An embedding of `vocab`'s tokens (row i is token i): what `model.embeddings` fills."""

    def __init__(self, vocab: Vocab, embedding_size: int):
        super().__init__(len(vocab), embedding_size)
        self.vocab = vocab


def embeddings(path: Annotated[Path, File()], freeze: bool = False) -> None:
    """The recipe keys of `model.embeddings` (a file of word vectors; whether they stay fixed)."""


def layers(model: nn.Module) -> list[tuple[str, VocabEmbedding]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, VocabEmbedding)]


def freeze(model: nn.Module, spec: dict | None) -> None:
    """Keep the vocabulary embeddings fixed when the recipe says `freeze: true`; a model
    without any is one line."""
    if not spec:
        return
    found = layers(model)
    if not found:
        raise ConfigError("model.embeddings", f"the {type(model).__name__} model embeds no vocabulary "
                                              f"(its inputs are numbers or labels)")
    if spec.get("freeze"):
        for _, layer in found:
            layer.weight.requires_grad_(False)


def load(model: nn.Module, spec: dict | None) -> list[str]:
    """Copy the file's vectors into the model's vocabulary embeddings; one line per layer
    saying how many rows came from the file."""
    if not spec:
        return []
    found = layers(model)
    wanted = {token for _, layer in found for token in layer.vocab.tokens}
    path = str(spec["path"])
    dim, vectors = read(path, wanted)
    notes = []
    for name, layer in found:
        if layer.embedding_dim != dim:
            raise ConfigError("model.embeddings", f"{path} holds vectors of {dim} values; the model's {name} has "
                                                  f"{layer.embedding_dim} (set model.embedding_size: {dim})")
        rows = [i for i, token in enumerate(layer.vocab.tokens) if token in vectors]
        if rows:
            with torch.no_grad():
                layer.weight[rows] = torch.tensor([vectors[layer.vocab.tokens[i]] for i in rows],
                                                  dtype=layer.weight.dtype)
        kept = len(layer.vocab) - len(rows)
        notes.append(f"model.embeddings: {name}: {len(rows):,} of {len(layer.vocab):,} tokens from "
                     f"{os.path.basename(path)}, {kept:,} as model.init gives"
                     f"{'; frozen' if spec.get('freeze') else ''}")
    return notes


def read(path: str, wanted: set[str]) -> tuple[int, dict[str, list[float]]]:
    """The vectors dimension and the vectors of the `wanted` words in the file at `path`."""
    with open(path, "rb") as f:
        first = f.readline(MAX_DIM * 32)
        header = first.split()
        if len(header) == 2 and all(h.isdigit() and len(h) < 12 for h in header):
            dim = int(header[1])
            _check_dim(path, dim, 2)
            start = f.tell()
            entry = f.readline(MAX_DIM * 32)
            f.seek(start)
            if _text_entry(entry, dim) is not None:
                return dim, _text(f, path, wanted, dim, line=2)
            return dim, _binary(f, path, wanted, dim, int(header[0]))
        f.seek(0)
        parsed = _text_entry(first, None)
        if parsed is None:
            raise ConfigError("model.embeddings.path", f"{path}: line 1 is not 'word v1 v2 ...' or a 'COUNT DIM' "
                                                       f"header (word2vec, GloVe or .vec text, or word2vec binary)")
        dim = len(parsed[1])
        _check_dim(path, dim, 1)
        return dim, _text(f, path, wanted, dim, line=1)


def _check_dim(path: str, dim: int, line: int) -> None:
    if not 1 <= dim <= MAX_DIM:
        raise ConfigError("model.embeddings.path", f"{path}, line {line}: vectors of {dim} values (1 to {MAX_DIM})")


FLOAT32_MAX = 3.4028234663852886e38


def _text_entry(raw: bytes, dim: int | None):
    """(word, values) from one text line, or None when it is not one."""
    try:
        parts = raw.decode("utf-8").rstrip("\r\n").split(" ")
    except UnicodeDecodeError:
        return None
    while parts and parts[-1] == "":  # a trailing space (word2vec's own writer leaves one)
        parts.pop()
    if len(parts) < 2 or (dim is not None and len(parts) != dim + 1):
        return None
    try:
        values = [float(v) for v in parts[1:]]
    except ValueError:
        return None
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):  # what the model's float32 holds
        return None
    return parts[0], values


def _text(f, path: str, wanted: set[str], dim: int, line: int) -> dict[str, list[float]]:
    vectors = {}
    limit = (dim + 1) * 64 + MAX_WORD
    for number, raw in enumerate(iter(lambda: f.readline(limit), b""), start=line):
        if not raw.strip():
            continue
        if not raw.endswith(b"\n") and len(raw) >= limit:
            raise ConfigError("model.embeddings.path", f"{path}, line {number}: longer than a line of {dim} values")
        word = raw.split(b" ", 1)[0].decode("utf-8", "replace")
        if word not in wanted or word in vectors:
            continue
        entry = _text_entry(raw, dim)
        if entry is None:
            raise ConfigError("model.embeddings.path", f"{path}, line {number}: not a word and {dim} finite numbers "
                                                         f"(float32: at most {FLOAT32_MAX:.4g} in size)")
        vectors[word] = entry[1]
    return vectors


def _binary(f, path: str, wanted: set[str], dim: int, count: int) -> dict[str, list[float]]:
    vectors, size = {}, 4 * dim
    for number in range(1, count + 1):
        word = bytearray()
        while True:
            c = f.read(1)
            if not c:
                raise ConfigError("model.embeddings.path", f"{path}: ends at word {number:,} of the {count:,} "
                                                           f"its header announces")
            if c == b" ":
                break
            if c != b"\n" or word:
                word += c
            if len(word) > MAX_WORD:
                raise ConfigError("model.embeddings.path", f"{path}: word {number:,} is longer than {MAX_WORD:,} bytes")
        raw = f.read(size)
        if len(raw) < size:
            raise ConfigError("model.embeddings.path", f"{path}: ends inside the vector of word {number:,}")
        text = word.decode("utf-8", "replace")
        if text in wanted and text not in vectors:
            values = torch.frombuffer(bytearray(raw), dtype=torch.float32)
            if not torch.isfinite(values).all():
                raise ConfigError("model.embeddings.path", f"{path}: the vector of word {number:,} ({text!r}) "
                                                           f"holds NaN or infinite values")
            vectors[text] = values.tolist()
    return vectors
