"""Dataset `labeled`: sequences with a label (text or numeric vectors)."""

from __future__ import annotations

import json

from typing import Annotated, Literal

import numpy as np
import torch

from seqcli.api import ConfigError, DataError, Range
from seqcli import vocab as V
from seqcli import vocab_build as build
from seqcli.data.examples import FileDataset
from seqcli.data.readers import numbers, rows, text_field

Level = Literal["char", "whitespace", "word", "bpe", "unigram"]


class LabeledDataset(FileDataset):
    """Rows of an input and a label, from JSONL or CSV/TSV. The input is text (`input_type:
    text`, split by `tokenize`) or a sequence of numeric vectors (`input_type: numbers`: a
    JSON list of lists, or 'a b; c d' text), of any length. With `condition: true` the label
    becomes the condition a `generate` model writes the text from."""

    def __init__(self, format: Literal["auto", "tsv", "csv", "jsonl"] = "auto", input: str | int = "input",
                 label: str | int = "label", input_type: Literal["text", "numbers"] = "text",
                 tokenize: Level = "whitespace", lowercase: bool = False, min_freq: Annotated[int, Range(1, 10**9)] = 1,
                 max_vocab: Annotated[int, Range(2, 10**8)] | None = None, condition: bool = False,
                 vocab_size: Annotated[int, Range(8, 10**6)] = 8000, **options):
        super().__init__(**options)
        self.vocab_size = vocab_size
        if tokenize in V.SUBWORD:
            V.require_tokenizers()
        if condition and input_type != "text":
            raise ConfigError("condition", "generating from a label needs text inputs (input_type: text)")
        self.format, self.input, self.label, self.input_type = format, input, label, input_type
        self.tokenize, self.lowercase, self.min_freq, self.max_vocab = tokenize, lowercase, min_freq, max_vocab
        self.condition = condition

    def read(self, path: str) -> list[tuple[str, object, str]]:
        out = []
        for n, row in rows(path, self.format, {"input": self.input, "label": self.label}):
            where = f"{path}:{n}"
            if self.input_type == "numbers":
                value = numbers(row["input"], where)
            else:
                text = text_field(row["input"], where, "input").strip()
                value = build.tokens_of(text.lower() if self.lowercase else text, self.tokenize)
                if not value:
                    raise DataError(f"{where}: the input is empty")
            if not isinstance(row["label"], str | int) or isinstance(row["label"], bool):
                raise DataError(f"{where}: a label is a string or an integer, got {json.dumps(row['label'])}")
            label = str(row["label"]).strip()
            if not label:
                raise DataError(f"{where}: the label is empty")
            out.append((where, value, label))
        return out

    def make_fields(self, train) -> dict:
        labels = V.Labels(sorted({label for _, _, label in train}))
        if self.condition:
            target = V.make_vocab((x for _, x, _ in train), self.tokenize, self.min_freq, self.max_vocab,
                                  specials=(V.UNK, V.EOS, V.BOS), vocab_size=self.vocab_size)
            return {"condition": labels, "target": target}
        if self.input_type == "numbers":
            dims = {len(x[0]) for _, x, _ in train}
            if len(dims) > 1:
                raise DataError(f"{self.train or self.path}: numeric inputs have different widths {sorted(dims)}")
            source = V.Numeric.fit(np.concatenate([np.asarray(x) for _, x, _ in train]))
        else:
            source = V.make_vocab((x for _, x, _ in train), self.tokenize, self.min_freq, self.max_vocab,
                                  vocab_size=self.vocab_size)
        return {"input": source, "label": labels}

    def encode(self, raw, fields) -> dict:
        where, value, label = raw
        labels = fields["condition" if self.condition else "label"]
        if label not in labels.index:
            raise DataError(f"{where}: label '{label}' does not occur in the training data "
                            f"(labels: {', '.join(labels.names[:20])})")
        if self.condition:
            return {"condition": torch.tensor(labels.index[label]),
                    "target": torch.tensor(build.ids_of(value, fields["target"]), dtype=torch.long)}
        if self.input_type == "numbers":
            x = torch.tensor(value, dtype=torch.float32)
            if x.shape[1] != fields["input"].dim:
                raise DataError(f"{where}: {x.shape[1]} values per step, the training data has {fields['input'].dim}")
        else:
            x = torch.tensor(build.ids_of(value, fields["input"]), dtype=torch.long)
        return {"input": x, "label": torch.tensor(labels.index[label])}
