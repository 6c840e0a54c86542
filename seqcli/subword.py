"""Subword models: a BPE or unigram tokenizer learned from the training texts (the
`tokenizers` library, the `subword` extra); `seqcli.vocab.Subword` is the vocabulary made
of one."""

from __future__ import annotations

import json


def require_tokenizers():
    try:
        import tokenizers
    except ImportError:
        from seqcli.errors import SeqcliError

        raise SeqcliError("subword vocabularies (bpe, unigram) need the tokenizers package: "
                          "pip install 'seqcli[subword]'") from None
    return tokenizers


def train_subword(texts, level: str, vocab_size: int, specials: list[str], unk: str) -> tuple[list[str], str]:
    """Learn a BPE or unigram vocabulary of at most `vocab_size` pieces (`specials` first,
    with ids 0, 1, ...; `unk` among them stands for what the pieces cannot spell) from an
    iterable of lines of the training split: its pieces in id order and the tokenizer as
    canonical JSON (what `seqcli.vocab.Subword` is made of)."""
    tokenizers = require_tokenizers()
    from tokenizers import decoders, models, pre_tokenizers, trainers

    specials = list(specials)
    if level == "bpe":
        tokenizer = tokenizers.Tokenizer(models.BPE(unk_token=unk))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    else:
        tokenizer = tokenizers.Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=unk,
                                          show_progress=False)
    # spaces are kept as '▁' and never dropped: a line is encoded with one space in front
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    tokenizer.decoder = decoders.Metaspace(prepend_scheme="never")
    texts = list(texts)
    try:
        tokenizer.train_from_iterator((" " + t for t in texts), trainer)
    except Exception as exc:  # the trainer's own words, made to name the recipe key
        from seqcli.errors import DataError

        if "not large enough" not in str(exc):
            raise
        chars = len(set(" ".join(texts)) | {"▁"}) + len(specials)
        raise DataError(f"dataset.vocab_size {vocab_size}: a {level} vocabulary holds every character of the "
                        f"training split ({chars} with the special tokens); make vocab_size at least {chars}") from None
    if level == "unigram":
        tokenizer = _canonical_unigram(tokenizers, tokenizer, len(specials), unk)
    table = tokenizer.get_vocab()
    tokens = sorted(table, key=table.__getitem__)
    if [table[t] for t in tokens] != list(range(len(tokens))) or tokens[: len(specials)] != specials:
        raise AssertionError("the tokenizer's ids are not 0..n-1 with the specials first")
    return tokens, json.dumps(json.loads(tokenizer.to_str()), sort_keys=True, separators=(",", ":"))


def _canonical_unigram(tokenizers, tokenizer, n_specials: int, unk: str):
    """The trainer's scores vary in their last digits from run to run (its sums run in
    parallel threads), and it lists pieces of equal score in no fixed order: round the scores
    to 8 decimals and sort the pieces (specials first, then by score, then by piece), so the
    same data gives the same vocabulary and ids."""
    spec = json.loads(tokenizer.to_str())
    pieces = [[piece, round(score, 8)] for piece, score in spec["model"]["vocab"]]
    pieces = pieces[:n_specials] + sorted(pieces[n_specials:], key=lambda p: (-p[1], p[0]))
    spec["model"]["vocab"] = pieces
    spec["model"]["unk_id"] = [p[0] for p in pieces].index(unk)
    return tokenizers.Tokenizer.from_str(json.dumps(spec))
