import os
import random

import pytest

from seqcli import registry

TINY = ["model.embedding_size=16", "model.hidden_size=32", "model.num_layers=1", "train.batch_size=8",
        "train.seq_len=16", "train.max_steps=20", "train.eval_every=10", "train.log_every=5",
        "sample.length=20"]


def poison_losses(monkeypatch, calls: set[int], value: float) -> None:
    """Make the language model's loss `value` (nan, inf) at the given training-step calls."""
    from seqcli.tasks.language_model import LanguageModel

    real = LanguageModel.train_step
    count = [0]

    def poisoned(self, model, batch, carry):
        result = real(self, model, batch, carry)
        count[0] += 1
        if count[0] in calls:
            result.loss = result.loss * value
        return result

    monkeypatch.setattr(LanguageModel, "train_step", poisoned)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test gets its own data cache and working directory, and a fresh plugin registry."""
    monkeypatch.setenv("SEQCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    registry.forget()
    yield
    for name in ("SEQCLI_NO_PLUGINS", "SEQCLI_DISABLE_PLUGINS"):  # set by --no-plugins / --disable-plugin
        os.environ.pop(name, None)
    registry.forget()


@pytest.fixture
def cli():
    from seqcli.testing import cli as invoke

    return invoke


def make_corpus(n_lines: int = 400, seed: int = 0) -> str:
    """Simple English-like sentences a tiny model can learn quickly."""
    rng = random.Random(seed)
    subjects = ["the cat", "the dog", "a bird", "my friend", "the old man"]
    verbs = ["sat on", "looked at", "ran to", "jumped over"]
    objects = ["the mat", "the house", "a tree", "the river"]
    return "".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n" for _ in range(n_lines))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(make_corpus(), encoding="utf-8")
    return path


@pytest.fixture
def recipe(tmp_path, corpus):
    """A tiny char-level recipe over `corpus`, as a file."""
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""\
description: tiny test recipe
dataset: {{name: text, path: {corpus}, level: char}}
task: {{name: language_model}}
model:
  cell: {{name: lstm}}
  embedding_size: 16
  hidden_size: 32
  num_layers: 1
train:
  batch_size: 8
  seq_len: 16
  max_steps: 20
  eval_every: 10
  log_every: 5
  optimizer: {{name: adam, lr: 0.01}}
sample: {{length: 20, prime: "the "}}
""", encoding="utf-8")
    return path
