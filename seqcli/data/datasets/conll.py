"""Dataset `conll`: one token per line with its tag, a blank line between sentences."""

from __future__ import annotations

from typing import Annotated

import torch

from seqcli.api import DataError, Range
from seqcli import vocab as V
from seqcli.data.examples import FileDataset
from seqcli.data.readers import text_lines


class ConllDataset(FileDataset):
    """CoNLL-style columns (whitespace separated): the token in `token_column`, the tag in
    `tag_column` (negative counts from the end). Lines starting with -DOCSTART- are skipped."""

    def __init__(self, token_column: int = 0, tag_column: int = -1, lowercase: bool = False,
                 min_freq: Annotated[int, Range(1, 10**9)] = 1, max_vocab: Annotated[int, Range(2, 10**8)] | None = None,
                 **options):
        super().__init__(**options)
        self.token_column, self.tag_column = token_column, tag_column
        self.lowercase, self.min_freq, self.max_vocab = lowercase, min_freq, max_vocab

    def read(self, path: str) -> list[tuple[str, list[str], list[str]]]:
        """Sentences; every token line of a file has the same number of columns (a line with
        more or fewer is an error, never an extra column read as the tag)."""
        sentences, tokens, tags, start, width = [], [], [], 1, None
        for n, line in enumerate(text_lines(path) + [""], 1):
            if line.startswith("-DOCSTART-"):
                continue
            if not line.strip():
                if tokens:
                    sentences.append((f"{path}:{start}", tokens, tags))
                tokens, tags = [], []
                continue
            if not tokens:
                start = n
            cols = line.split()
            try:
                token, tag = cols[self.token_column], cols[self.tag_column]
                if (self.token_column % len(cols)) == (self.tag_column % len(cols)):  # one column read twice
                    raise IndexError
            except IndexError:
                raise DataError(f"{path}:{n}: expected a token in column {self.token_column} and a tag in column "
                                f"{self.tag_column}, found {len(cols)} column(s)") from None
            if width is None:
                width = (len(cols), n)
            elif len(cols) != width[0]:
                raise DataError(f"{path}:{n}: {len(cols)} columns, the file's first token line ({path}:{width[1]}) has "
                                f"{width[0]}; every token line has the same columns")
            tokens.append(token.lower() if self.lowercase else token)
            tags.append(tag)
        return sentences

    def make_fields(self, train) -> dict:
        return {"input": V.build((t for _, t, _ in train), "whitespace", self.min_freq, self.max_vocab),
                "tags": V.Labels(sorted({tag for _, _, tags in train for tag in tags}))}

    def encode(self, raw, fields) -> dict:
        where, tokens, tags = raw
        unknown = [t for t in tags if t not in fields["tags"].index]
        if unknown:
            raise DataError(f"{where}: tag '{unknown[0]}' does not occur in the training data")
        return {"input": torch.tensor([fields["input"].index[t] for t in tokens]),
                "tags": torch.tensor([fields["tags"].index[t] for t in tags])}
