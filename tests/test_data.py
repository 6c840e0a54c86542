"""The `text` dataset: splits, vocabularies, tokenisation, cache and bad files."""

import json
import os

import numpy as np
import pytest
import torch

from seqcli import vocab as V
from seqcli import vocab_build as build
from seqcli.data.datasets.text import TextDataset, read_text
from seqcli.errors import ConfigError, DataError


def test_char_level_vocab_comes_from_train_only(tmp_path):
    (tmp_path / "tr.txt").write_text("abcab\n")
    (tmp_path / "va.txt").write_text("abz\n")
    data = TextDataset(train=str(tmp_path / "tr.txt"), valid=str(tmp_path / "va.txt")).load()
    vocab = data.fields["text"]
    assert vocab.tokens == ["<unk>", "\n", "a", "b", "c"]
    assert vocab.decode(data.splits["train"].tolist()) == "abcab\n"
    assert data.splits["valid"].tolist() == [2, 3, 0, 1]  # z is unknown


def test_word_level_ends_lines_with_eos(tmp_path):
    (tmp_path / "tr.txt").write_text("the cat sat\nthe dog\n")
    (tmp_path / "te.txt").write_text("the bird\n")
    data = TextDataset(train=str(tmp_path / "tr.txt"), valid=str(tmp_path / "tr.txt"),
                       test=str(tmp_path / "te.txt"), level="word").load()
    vocab = data.fields["text"]
    assert vocab.tokens[:3] == ["<unk>", "<eos>", "the"]
    words = [vocab.tokens[i] for i in data.splits["train"].tolist()]
    assert words == ["the", "cat", "sat", "<eos>", "the", "dog", "<eos>"]
    assert [vocab.tokens[i] for i in data.splits["test"].tolist()] == ["the", "<unk>", "<eos>"]
    assert vocab.decode(data.splits["train"].tolist()) == "the cat sat\nthe dog\n"


def test_min_freq_and_max_vocab(tmp_path):
    (tmp_path / "c.txt").write_text("a a a b b c\n" * 40)
    data = TextDataset(path=str(tmp_path / "c.txt"), level="word", max_vocab=3).load()
    assert data.fields["text"].tokens == ["<unk>", "<eos>", "a"]


def test_one_file_is_split_at_line_boundaries(corpus):
    data = TextDataset(path=str(corpus), valid_fraction=0.1, test_fraction=0.1).load()
    vocab = data.fields["text"]
    texts = {k: vocab.decode(v.tolist()) for k, v in data.splits.items()}
    assert texts["train"] + texts["valid"] + texts["test"] == corpus.read_text()
    assert all(t.endswith("\n") for t in texts.values())
    assert 0.08 < len(texts["valid"]) / len(corpus.read_text()) < 0.12


def test_vectorised_encoding_matches_a_plain_loop():
    text = "héllo wörld ☃ abc\n" * 50
    codes = build.char_codes(text)
    vocab = build.char_vocab(codes[:100])
    ids = build.encode_chars(codes, vocab)
    assert ids.tolist() == [vocab.index[c] for c in text]


def mapped_from_file(tensor) -> str:
    """The file a tensor's memory is mapped from ('' if none), from /proc/self/maps."""
    address = tensor.data_ptr()
    for line in open("/proc/self/maps"):
        span, *rest = line.split()
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= address < hi:
            return rest[4] if len(rest) > 4 else ""
    return ""


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_second_load_reuses_the_cache(corpus, tmp_path):
    first = TextDataset(path=str(corpus)).load()
    second = TextDataset(path=str(corpus)).load()
    assert "cached" not in first.info and second.info["cached"] is True
    assert all(np.array_equal(first.splits[k], second.splits[k]) for k in first.splits)
    assert first.fields["text"] == second.fields["text"]
    assert mapped_from_file(second.splits["train"]).endswith("train.npy")  # memory-mapped, not read in
    corpus.write_text("a new line with new words: xyzq\n" + corpus.read_text())  # changed file: rebuilt
    third = TextDataset(path=str(corpus)).load()
    assert "cached" not in third.info and "q" in third.fields["text"].tokens


def test_default_corpus_needs_no_files():
    data = TextDataset().load()
    assert data.splits["train"].numel() > 100_000
    assert "Python" in data.info["source"]


def test_bad_files_get_one_line_errors(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"abc\x00\x01\x02")
    (tmp_path / "latin.txt").write_bytes("line one\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    with pytest.raises(DataError, match=r"bin.txt: looks like a binary file"):
        read_text(str(tmp_path / "bin.txt"))
    with pytest.raises(DataError, match=r"latin.txt:2: not valid UTF-8 \(byte 0xe9 at offset 12\)"):
        read_text(str(tmp_path / "latin.txt"))
    with pytest.raises(DataError, match=r"blank.txt: file is empty"):
        read_text(str(tmp_path / "blank.txt"))


def test_too_small_to_split(tmp_path):
    (tmp_path / "one.txt").write_text("just one line\n")
    with pytest.raises(DataError, match="too small to carve a non-empty (valid|test) split"):
        TextDataset(path=str(tmp_path / "one.txt")).load()


def test_inconsistent_options(corpus):
    with pytest.raises(ConfigError, match="valid/test files need a train file"):
        TextDataset(valid=str(corpus))
    with pytest.raises(ConfigError, match="valid_fraction"):
        TextDataset(train=str(corpus), valid_fraction=0.0)


def cache_entry(tmp_path):
    [entry] = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    return entry


def test_the_cache_follows_contents_not_sizes_and_times(tmp_path):
    from seqcli.data.datasets.text import TextDataset

    path = tmp_path / "t.txt"
    path.write_text("abcabcabc\n" * 50)
    first = TextDataset(path=str(path)).load()
    stat = path.stat()
    path.write_text("abcabcabd\n" * 50)  # same size ...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and time restored
    second = TextDataset(path=str(path)).load()
    assert "d" in second.fields["text"].tokens and "d" not in first.fields["text"].tokens
    assert not second.info.get("cached")


DAMAGE = {
    "meta.json as a list": lambda e: (e / "meta.json").write_text("[1, 2]"),
    "ids out of range": lambda e: _rewrite(e, lambda a: a.__setitem__(0, 10_000)),
    "ids rewritten in range": lambda e: _rewrite(e, lambda a: a.__setitem__(slice(0, 5), 1)),
    "a shrunk vocabulary": lambda e: _meta(e, lambda m: m["vocab"].__setitem__("tokens", m["vocab"]["tokens"][:2])),
    "a truncated array": lambda e: (e / "train.npy").write_bytes((e / "train.npy").read_bytes()[:100]),
    "a missing array": lambda e: (e / "valid.npy").unlink(),
    "a float array": lambda e: np.save(e / "train.npy", np.load(e / "train.npy").astype(np.float32)),
}


def _rewrite(entry, change):
    array = np.load(entry / "train.npy")
    change(array)
    np.save(entry / "train.npy", array)


def _meta(entry, change):
    meta = json.loads((entry / "meta.json").read_text())
    change(meta)
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cache_entry_is_rebuilt_and_replaced(tmp_path, damage):
    from seqcli.data.datasets.text import TextDataset

    path = tmp_path / "t.txt"
    path.write_text("the cat sat on the mat\n" * 40)
    fresh = TextDataset(path=str(path)).load()
    assert TextDataset(path=str(path)).load().info.get("cached")
    DAMAGE[damage](cache_entry(tmp_path))
    rebuilt = TextDataset(path=str(path)).load()
    assert not rebuilt.info.get("cached")
    assert rebuilt.fields == fresh.fields and all(torch.equal(rebuilt.splits[k], fresh.splits[k]) for k in fresh.splits)
    again = TextDataset(path=str(path)).load()  # the bad entry was replaced by a good one
    assert again.info.get("cached") and torch.equal(again.splits["train"], fresh.splits["train"])


def test_one_long_line_is_carved_at_spaces(tmp_path):
    from seqcli.data.datasets.text import TextDataset

    path = tmp_path / "one-line.txt"
    path.write_text(" ".join(["word"] * 5000))  # no line break anywhere
    data = TextDataset(path=str(path), level="word").load()
    assert all(data.splits[k].numel() > 100 for k in ("train", "valid", "test"))
