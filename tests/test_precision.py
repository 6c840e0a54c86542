"""train.precision: bf16 autocast learns like float32; weights and optimizer stay float32."""

import json

import pytest
import torch

from seqcli.train import checkpoint
from tests.conftest import TINY


def valid_losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["split"] == "valid"]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_bf16_language_model_learns(cli, corpus, tmp_path, cell):
    run = tmp_path / cell
    cli("run", "char-lm", f"dataset.path={corpus}", *TINY, f"model.cell.name={cell}", "train.max_steps=150",
        "train.eval_every=150", "train.optimizer.lr=0.01", "train.precision=bf16", "sample.prime=the",
        "--run-dir", run)
    assert valid_losses(run)[-1] < 1.5  # untrained: about 3.3 (log of the 26 characters)
    weights = checkpoint.load(run, "last").model
    assert all(w.dtype == torch.float32 for w in weights.values())


def test_bf16_seq2seq_with_attention_trains_and_decodes(cli, tmp_path):
    run = tmp_path / "reverse"
    result = cli("run", "reverse", "model.hidden_size=32", "model.embedding_size=16", "dataset.train_size=300",
                 "dataset.valid_size=40", "train.max_steps=30", "train.eval_every=30", "train.precision=bf16",
                 "--run-dir", run)
    assert "exact_match" in result.stdout
    assert valid_losses(run)[-1] < 2.3  # from about log(12) = 2.5 at the start


def test_an_unknown_precision_is_refused(cli, tmp_path):
    result = cli("run", "char-lm", "train.precision=fp8", "--run-dir", tmp_path / "x", ok=False)
    assert result.exit_code == 2
    assert "train.precision" in result.stderr and "fp8" in result.stderr
