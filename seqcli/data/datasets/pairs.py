"""Dataset `pairs`: source/target pairs (translation, transliteration, spelling to sound)."""

from __future__ import annotations

from typing import Annotated, Literal

import torch

from seqcli.api import SOURCE_FIRST, TARGET_COPY, DataError, Range
from seqcli import vocab as V
from seqcli import vocab_build as build
from seqcli.data.examples import FileDataset
from seqcli.data.readers import rows, text_field

Level = Literal["char", "whitespace", "word", "bpe", "unigram"]
Format = Literal["auto", "tsv", "csv", "jsonl"]


class PairsDataset(FileDataset):
    """Pairs from TSV, CSV or JSONL. `source`/`target` name a JSON key or CSV/TSV header
    column, or give a 0-based column index (for files without a header). Each side is split
    by `tokenize` (or `source_tokenize`/`target_tokenize`): characters, whitespace, words
    and punctuation, or subword pieces learned from the training split (`bpe`, `unigram`,
    up to `vocab_size` pieces per side). The same source may appear with several targets."""

    def __init__(self, format: Format = "auto", source: str | int = "source", target: str | int = "target",
                 tokenize: Level = "char", source_tokenize: Level | None = None, target_tokenize: Level | None = None,
                 lowercase: bool = False, min_freq: Annotated[int, Range(1, 10**9)] = 1,
                 max_vocab: Annotated[int, Range(4, 10**8)] | None = None,
                 vocab_size: Annotated[int, Range(8, 10**6)] = 8000, **options):
        super().__init__(**options)
        self.format, self.source, self.target = format, source, target
        self.levels = (source_tokenize or tokenize, target_tokenize or tokenize)
        self.lowercase, self.min_freq, self.max_vocab, self.vocab_size = lowercase, min_freq, max_vocab, vocab_size
        if any(level in V.SUBWORD for level in self.levels):
            V.require_tokenizers()

    def read(self, path: str) -> list[tuple[list[str], list[str]]]:
        out = []
        for n, row in rows(path, self.format, {"source": self.source, "target": self.target}):
            sides = []
            for name, level in zip(("source", "target"), self.levels):
                text = text_field(row[name], f"{path}:{n}", name).strip()
                text = text.lower() if self.lowercase else text
                tokens = build.tokens_of(text, level)
                if not tokens:
                    raise DataError(f"{path}:{n}: the {name} is empty")
                sides.append(tokens)
            out.append(tuple(sides))
        return out

    def make_fields(self, train) -> dict:
        return {
            "source": V.make_vocab((s for s, _ in train), self.levels[0], self.min_freq, self.max_vocab,
                                   vocab_size=self.vocab_size),
            "target": V.make_vocab((t for _, t in train), self.levels[1], self.min_freq, self.max_vocab,
                                   specials=(V.UNK, V.EOS, V.BOS), vocab_size=self.vocab_size),
        }

    def encode(self, raw, fields) -> dict:
        """The ids; for a pair with a word its vocabulary lacks (<unk>), also which tokens
        are the same words, which copy attention needs then (a word neither vocabulary has is
        still the same word in the source and the target). Without one, the ids say it."""
        source, target = raw
        ids = (build.ids_of(source, fields["source"]), build.ids_of(target, fields["target"]))
        example = {"source": torch.tensor(ids[0], dtype=torch.long), "target": torch.tensor(ids[1], dtype=torch.long)}
        if 0 in ids[0] or 0 in ids[1]:
            first: dict[str, int] = {}
            for i, token in enumerate(source):
                first.setdefault(token, i)
            example[SOURCE_FIRST] = torch.tensor([first[t] for t in source], dtype=torch.long)
            example[TARGET_COPY] = torch.tensor([first.get(t, -1) for t in target], dtype=torch.long)
        return example
