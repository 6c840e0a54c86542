"""Dataset `text`: plain text for language modelling, by character or by word."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

from seqcli.api import Data, DataError, Dataset, Range
from seqcli import vocab as V
from seqcli import vocab_build as build
from seqcli.data.corpus import default_corpus
from seqcli.data.examples import check_sources, split_counts
from seqcli.data.readers import read_text  # noqa: F401 - read here, and imported from here by plugins
from seqcli.files import read_regular, sha256_of, write_atomic
from seqcli.schema import File

FilePath = Annotated[str, File()]
Fraction = Annotated[float, Range(0, 0.5)]
Lines = Annotated[int, Range(1, 10**9)]  # valid_size, test_size: the last lines of the text
CACHE_FORMAT = 2


class TextDataset(Dataset):
    """Text from one file split by fraction (`path`), from separate `train`/`valid`/`test`
    files, or, with neither, the default corpus that ships with Python. The vocabulary is
    built from the training split only; anything else maps to `<unk>`."""

    def __init__(
        self,
        path: FilePath | None = None,
        train: FilePath | None = None,
        valid: FilePath | None = None,
        test: FilePath | None = None,
        level: Literal["char", "word", "bpe", "unigram"] = "char",
        vocab_size: Annotated[int, Range(8, 10**6)] = 8000,
        valid_fraction: Fraction = 0.05,
        test_fraction: Fraction = 0.05,
        valid_size: Lines | None = None,
        test_size: Lines | None = None,
        lowercase: bool = False,
        min_freq: Annotated[int, Range(1, 10**9)] = 1,
        max_vocab: Annotated[int, Range(2, 10**8)] | None = None,
        cache: bool = True,
    ):
        check_sources(path, train, valid, test, valid_fraction, valid_size, test_size)
        self.path, self.train, self.valid, self.test = path, train, valid, test
        self.level, self.lowercase, self.vocab_size = level, lowercase, vocab_size
        if level in V.SUBWORD:
            V.require_tokenizers()
        self.valid_fraction, self.test_fraction = valid_fraction, test_fraction
        self.valid_size, self.test_size = valid_size, test_size
        self.min_freq, self.max_vocab, self.cache = min_freq, max_vocab, cache

    # -- public ---------------------------------------------------------------------------

    def load(self) -> Data:
        return self.load_with(None)

    def load_with(self, fields: dict | None) -> Data:
        if not (self.path or self.train):
            text, source = default_corpus()
            return self._build({"all": text}, source, fields)
        files = {"all": self.path} if self.path else {
            k: v for k, v in (("train", self.train), ("valid", self.valid), ("test", self.test)) if v}
        if fields is not None:  # given vocabularies: nothing learnt, nothing cached
            return self._build({k: read_text(p) for k, p in files.items()}, ", ".join(files.values()), fields)
        key = self._cache_key(files)
        cached = self._read_cache(key)
        if cached is not None:
            return cached
        data = self._build({k: read_text(p) for k, p in files.items()}, ", ".join(files.values()))
        self._write_cache(key, data)
        return data

    def load_file(self, path: str, fields: dict) -> torch.Tensor:
        vocab = fields["text"]
        return self._encode(read_text(path), vocab)

    # -- building -------------------------------------------------------------------------

    def _build(self, texts: dict[str, str], source: str, fields: dict | None = None) -> Data:
        if "all" in texts:
            texts = carve(texts["all"], self.valid_fraction, self.test_fraction, source, self.valid_size, self.test_size)
        elif "valid" not in texts:
            texts = {**carve(texts["train"], self.valid_fraction, 0.0, self.train, self.valid_size), **{
                k: v for k, v in texts.items() if k != "train"}}
        if self.lowercase:
            texts = {k: t.lower() for k, t in texts.items()}
        if fields is not None:
            vocab = fields["text"]
            splits = {k: self._encode(t, vocab) for k, t in texts.items()}
        elif self.level in V.SUBWORD:  # learned from the training split's lines; <eos> ends each line
            vocab = V.subword_vocab(V.lines(texts["train"]), self.level, self.vocab_size, lines=True)
            splits = {k: torch.from_numpy(encode_subword(t, vocab)) for k, t in texts.items()}
        elif self.level == "char":
            codes = {k: build.char_codes(t) for k, t in texts.items()}
            vocab = build.char_vocab(codes["train"], self.min_freq, self.max_vocab)
            splits = {k: torch.from_numpy(build.encode_chars(c, vocab)) for k, c in codes.items()}
        else:
            tokens = {k: build.words(t) for k, t in texts.items()}
            vocab = build.word_vocab(tokens["train"], self.min_freq, self.max_vocab)
            splits = {k: torch.from_numpy(build.encode_words(w, vocab)) for k, w in tokens.items()}
        info = {"source": source, "level": self.level, "vocab_size": len(vocab),
                **{f"{k}_tokens": int(v.numel()) for k, v in splits.items()}}
        return Data(splits=splits, fields={"text": vocab}, info=info)

    def _encode(self, text: str, vocab: V.Vocab) -> torch.Tensor:
        if self.lowercase:
            text = text.lower()
        if vocab.level in V.SUBWORD:
            return torch.from_numpy(encode_subword(text, vocab))
        if vocab.level == "char":
            return torch.from_numpy(build.encode_chars(build.char_codes(text), vocab))
        return torch.from_numpy(build.encode_words(build.words(text), vocab))

    # -- cache: token arrays and the vocabulary, keyed by the files' contents and the options --

    def _cache_key(self, files: dict[str, str]) -> str:
        contents = {k: sha256_of(p) for k, p in files.items()}  # contents, not sizes and times
        options = [self.level, self.lowercase, self.valid_fraction, self.test_fraction,
                   self.min_freq, self.max_vocab, CACHE_FORMAT]
        if self.valid_size or self.test_size:
            options.append([self.valid_size, self.test_size])
        if self.level in V.SUBWORD:
            options.append(self.vocab_size)
        return hashlib.sha256(json.dumps([contents, options]).encode()).hexdigest()[:24]

    def _read_cache(self, key: str) -> Data | None:
        """The cached entry, verified (its metadata's shape, each array's type, size, checksum
        and ids), or None: a damaged entry is removed and rebuilt, never trained on."""
        folder = cache_dir() / key
        if not self.cache or not folder.exists():
            return None
        try:
            meta = json.loads(read_regular(folder / "meta.json", 1 << 30))  # a FIFO there is damage, not a wait
            if not (isinstance(meta, dict) and meta.get("format") == CACHE_FORMAT and isinstance(meta.get("info"), dict)
                    and isinstance(meta.get("splits"), dict) and {"train", "valid"} <= set(meta["splits"])):
                raise ValueError("metadata of the wrong shape")
            if meta.get("digest") != meta_digest(meta):
                raise ValueError("metadata changed since it was written")
            vocab = V.field_from_state(meta["vocab"])
            if not isinstance(vocab, V.Vocab) or vocab.level != self.level or len(vocab) < 2:
                raise ValueError("a vocabulary of the wrong kind")
            splits = {}
            for name, expected in meta["splits"].items():
                if not (folder / f"{name}.npy").is_file() or (folder / f"{name}.npy").is_symlink():
                    raise ValueError(f"{name}: not a regular file")
                array = np.load(folder / f"{name}.npy", mmap_mode="r")
                if array.dtype != np.int32 or array.ndim != 1 or array.size != expected.get("size"):
                    raise ValueError(f"{name}: an array of the wrong type or size")
                if array.size and (int(array.min()) < 0 or int(array.max()) >= len(vocab)):
                    raise ValueError(f"{name}: ids outside the vocabulary")
                if array_digest(array) != expected.get("digest"):
                    raise ValueError(f"{name}: contents changed since they were written")
                splits[name] = mapped(array)
        except Exception:  # noqa: BLE001 - any damage at all means: rebuild
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return Data(splits=splits, fields={"text": vocab}, info={**meta["info"], "cached": True})

    def _write_cache(self, key: str, data: Data) -> None:
        if not self.cache:
            return
        root, tmp = cache_dir(), None
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{os.getpid()}-"))
            splits = {}
            for k, t in data.splits.items():
                array = t.numpy().astype(np.int32, copy=False)
                np.save(tmp / f"{k}.npy", array)
                splits[k] = {"size": int(array.size), "digest": array_digest(array)}
            meta = {"format": CACHE_FORMAT, "splits": splits, "vocab": data.fields["text"].to_state(),
                    "info": data.info}
            meta["digest"] = meta_digest(meta)
            write_atomic(tmp / "meta.json", json.dumps(meta), sync=False)
            shutil.rmtree(root / key, ignore_errors=True)  # a damaged entry is replaced
            os.replace(tmp, root / key)  # atomic: a reader sees the whole entry or none
        except OSError:  # caching is an optimisation; a read-only or full disk only costs time
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


def encode_subword(text: str, vocab: V.Subword) -> np.ndarray:
    """Text -> the ids of its pieces, line by line, `<eos>` after every line."""
    eos = [vocab.eos]
    ids = itertools.chain.from_iterable(line + eos for line in vocab.encode_lines(V.lines(text)))
    return np.fromiter(ids, dtype=np.int32)


def meta_digest(meta: dict) -> str:
    """A hash of an entry's metadata (its vocabulary above all), but the hash itself."""
    plain = json.dumps({k: v for k, v in meta.items() if k != "digest"}, sort_keys=True)
    return hashlib.sha256(plain.encode()).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """A CRC-32 of a token array (about 3.5 GB/s here): it catches damage, including ids
    rewritten inside the vocabulary, at a fraction of the time a cached load takes."""
    return f"crc32:{zlib.crc32(np.ascontiguousarray(array).data):08x}"


def mapped(array: np.ndarray) -> torch.Tensor:
    """A cached token array, memory-mapped: pages are read on use and shared between runs."""
    with warnings.catch_warnings():  # read-only is the point: nothing writes to token arrays
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def cache_dir() -> Path:
    if os.environ.get("SEQCLI_CACHE_DIR"):
        return Path(os.environ["SEQCLI_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "seqcli"


def carve(text: str, valid_fraction: float, test_fraction: float, source: str, valid_size: int | None = None,
          test_size: int | None = None) -> dict[str, str]:
    """Split text into train/valid/test by fraction, at line boundaries: the last lines are test,
    the ones before them valid. Text with no line break near the cut (one long line) is cut
    at the next space, or at the character itself. Sizes, where given, count lines."""
    if valid_size or test_size:
        return carve_lines(text, valid_fraction, test_fraction, source, valid_size, test_size)
    n = len(text)
    near = max(1, n // 100)  # how far past the fraction a cut may move to find a boundary

    def cut(at: float) -> int:
        i = int(n * at)
        for boundary in ("\n", " "):
            j = text.find(boundary, i, i + near)
            if j >= 0:
                return j + 1
        return i

    a = cut(1 - valid_fraction - test_fraction) if valid_fraction + test_fraction else n
    b = cut(1 - test_fraction) if test_fraction else n
    parts = {"train": text[:a], "valid": text[a:b]}
    if test_fraction:
        parts["test"] = text[b:]
    for name, part in parts.items():
        if not part.strip():
            raise DataError(f"{source}: too small to carve a non-empty {name} split "
                            f"({n} characters); use a larger file or give separate files")
    return parts


def carve_lines(text: str, valid_fraction: float, test_fraction: float, source: str, valid_size: int | None,
                test_size: int | None) -> dict[str, str]:
    """`carve` with a size in lines for valid and/or test (a fraction, of the lines, for the other)."""
    lines = V.lines(text, keepends=True)
    n = len(lines)
    n_valid, n_test = split_counts(n, valid_fraction, test_fraction, valid_size, test_size, source, "lines")
    parts = {"train": "".join(lines[: n - n_valid - n_test]), "valid": "".join(lines[n - n_valid - n_test : n - n_test])}
    if n_test:
        parts["test"] = "".join(lines[n - n_test :])
    for name, part in parts.items():
        if not part.strip():
            raise DataError(f"{source}: the {name} split would hold only blank lines; use larger sizes")
    return parts
