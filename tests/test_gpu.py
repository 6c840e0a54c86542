"""CUDA paths: run where a GPU is present, skipped elsewhere."""

import json

import pytest
import torch

from seqcli.train import checkpoint
from tests.conftest import TINY

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_picks_cuda():
    from seqcli.train.device import pick_device

    assert pick_device("auto").type == "cuda"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_trains_and_samples_on_the_gpu(cli, corpus, tmp_path, precision):
    run = tmp_path / precision
    cli("run", "char-lm", f"dataset.path={corpus}", *TINY, "train.max_steps=150", "train.eval_every=150",
        "train.optimizer.lr=0.01", "train.device=cuda", f"train.precision={precision}", "sample.prime=the",
        "--run-dir", run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in records if r["split"] == "valid"][-1]["loss"] < 1.5
    result = cli("sample", run, "--device", "cuda", "--prime", "the", "--length", 50, "--seed", 1)
    assert result.stdout.startswith("the") and len(result.stdout) > 40
    assert checkpoint.load(run, "last").model["out.weight"].device.type == "cpu"  # loads anywhere


def test_seq2seq_on_cudnn(cli, tmp_path):
    run = tmp_path / "rev"
    cli("run", "reverse", "model.hidden_size=32", "model.embedding_size=16", "dataset.train_size=300",
        "dataset.valid_size=40", "train.max_steps=30", "train.eval_every=30", "train.device=cuda", "--run-dir", run)
    result = cli("sample", run, "--device", "cuda", "-i", "abc", "--beam-size", 2)
    assert result.stdout.strip()


def test_compiled_plugin_cell_on_the_gpu(cli, corpus, tmp_path):
    """train.compile on CUDA (Triton kernels for the step): the same losses as the eager run."""
    losses = {}
    for compiled in ("false", "true"):
        run = tmp_path / compiled
        cli("run", "char-lm", f"dataset.path={corpus}", *TINY, "model.cell.name=mingru", "model.cell.parallel=never",
            f"train.compile={compiled}", "train.max_steps=60", "train.eval_every=60", "train.device=cuda",
            "--run-dir", run)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses[compiled] = [r for r in records if r["split"] == "valid"][-1]["loss"]
    assert abs(losses["true"] - losses["false"]) < 1e-3, losses
