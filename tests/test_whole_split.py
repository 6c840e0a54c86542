"""Evaluation outside training scores the whole split and says how much it scored;
`train.eval_batches` caps only the evaluations made while training."""

import json

import pytest

import seqcli
from seqcli import build

CAPPED = ["train.max_steps=20", "train.eval_every=10", "train.eval_batches=1", "train.batch_size=8",
          "dataset.train_size=200", "dataset.valid_size=40", "dataset.test_size=60", "model.hidden_size=32",
          "model.embedding_size=16"]


def test_evaluate_scores_every_example_of_a_run_trained_with_eval_batches(cli, tmp_path):
    run = tmp_path / "run"
    cli("run", "reverse", *CAPPED, "--run-dir", run)
    out = json.loads(cli("evaluate", run, "--json").stdout)
    assert out["examples"] == 60
    loaded = seqcli.load(run)
    assert loaded.evaluate(split="test")["examples"] == 60
    # the score is the whole split's: the same as scoring with batches large enough to hold it
    from seqcli.train.stepper import evaluate

    whole = evaluate(loaded.task, loaded.model, build.data(loaded.recipe), "test",
                     loaded.recipe.train.__class__(batch_size=64))
    assert out["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert out["exact_match"] == pytest.approx(whole["exact_match"])
    first_batch = evaluate(loaded.task, loaded.model, build.data(loaded.recipe), "test", loaded.recipe.train,
                           capped=True)
    assert "examples" not in first_batch and first_batch["loss"] != pytest.approx(out["loss"], rel=1e-6)
    assert "examples" in cli("evaluate", run).stdout  # the table says it too


def test_the_model_card_s_test_metrics_come_from_the_whole_split(cli, tmp_path):
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    cli("run", "reverse", *CAPPED, "--run-dir", run)
    cli("export", run, "-o", tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    test = card[card.index("Test split"):]
    assert "| examples | 60 |" in test


def test_a_language_model_says_how_many_tokens_it_scored(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run", "train.eval_batches=1")
    out = json.loads(cli("evaluate", tmp_path / "run", "--split", "valid", "--json").stdout)
    valid = build.data(seqcli.load(tmp_path / "run").recipe).splits["valid"]
    # batch-8 columns: every token but each column's first and the remainder under one batch
    assert out["tokens"] == (valid.numel() // 8 - 1) * 8
