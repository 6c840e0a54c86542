"""Dataset `python_tokens`: the standard library's source, one logical line per example, each
token tagged with its kind (NAME, KEYWORD, OP, NUMBER, STRING, ...), as Python's own
`tokenize` module reads it. Real data every Python installation carries: no download.

A tagger must tell keywords from names and see where strings and numbers begin: an exercise
for the `tag` task (recipe `python-tokens`).
"""

from __future__ import annotations

import io
import keyword
import sysconfig
import tokenize
from pathlib import Path
from typing import Annotated

import torch

from seqcli.api import INPUT, TAGS, ConfigError, Data, DataError, Dataset, Labels, Range, Vocab

SKIP = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENDMARKER,
        tokenize.ENCODING}


def tag_lines(source: str) -> list[tuple[list[str], list[str]]]:
    """(tokens, kinds) for each logical line of Python source."""
    lines, tokens, kinds = [], [], []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NEWLINE and tokens:
            lines.append((tokens, kinds))
            tokens, kinds = [], []
        if tok.type in SKIP:
            continue
        kind = tokenize.tok_name[tok.type]
        if tok.type == tokenize.NAME and keyword.iskeyword(tok.string):
            kind = "KEYWORD"
        if tok.type == tokenize.STRING or kind.startswith("FSTRING"):
            kind, text = "STRING", tok.string[:12]  # strings are long: their opening is enough
        else:
            text = tok.string
        tokens.append(text)
        kinds.append(kind)
    return lines


class PythonTokens(Dataset):
    """Token-kind tagging over the standard library's top-level modules; files are split
    between train, valid and test by name (every `every`-th file is valid, the next test)."""

    api_version = "1.4"  # Vocab.build (1.3)

    def __init__(self, max_files: Annotated[int, Range(3, 10_000)] = 60,
                 max_line_tokens: Annotated[int, Range(1, 10_000)] = 40, min_freq: Annotated[int, Range(1, 1000)] = 2,
                 every: Annotated[int, Range(3, 1000)] = 10):
        if max_files < every:
            raise ConfigError("max_files", f"must be at least every ({every}) to give valid and test files")
        self.max_files, self.max_line_tokens, self.min_freq, self.every = max_files, max_line_tokens, min_freq, every

    def load(self) -> Data:
        files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[: self.max_files]
        if len(files) < 3:
            raise DataError("python_tokens: found no standard library source files")
        splits: dict[str, list] = {"train": [], "valid": [], "test": []}
        for i, path in enumerate(files):
            split = "valid" if i % self.every == 0 else "test" if i % self.every == 1 else "train"
            try:
                lines = tag_lines(path.read_text(encoding="utf-8"))
            except (SyntaxError, tokenize.TokenError, UnicodeDecodeError):
                continue  # a file this Python cannot tokenize is left out
            splits[split] += [line for line in lines if len(line[0]) <= self.max_line_tokens]
        vocab = Vocab.build((tokens for tokens, _ in splits["train"]), "whitespace", self.min_freq)
        tags = Labels(sorted({k for _, kinds in splits["train"] for k in kinds}))
        encoded = {
            name: [{INPUT: torch.tensor([vocab.index[t] for t in tokens]),
                    TAGS: torch.tensor([tags.index.get(k, 0) for k in kinds])} for tokens, kinds in lines]
            for name, lines in splits.items()
        }
        info = {"source": f"Python standard library ({len(files)} files)",
                **{f"{k}_examples": len(v) for k, v in encoded.items()}}
        return Data(splits=encoded, fields={INPUT: vocab, TAGS: tags}, info=info)
