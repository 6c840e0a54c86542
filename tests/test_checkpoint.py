"""Checkpoints are written atomically and are complete on their own."""

import pytest
import torch

from seqcli.errors import CheckpointError
from seqcli.train import checkpoint


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"step": 1, "w": torch.ones(3)}, path)

    def dies_halfway(obj, f):
        f.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError):
        checkpoint.save({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_run_directory_checkpoint_is_self_contained(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run")
    ckpt = checkpoint.load(tmp_path / "run")
    assert ckpt["path"].endswith("best.pt")
    assert ckpt["recipe"]["model"]["hidden_size"] == 32
    assert ckpt["fields"]["text"]["tokens"][0] == "<unk>"
    assert ckpt["plugins"]["task"]["package"] == "seqcli"
    assert {"model", "optimizer", "rng", "step", "epoch", "best", "seqcli_version"} <= set(ckpt)
    assert checkpoint.load(tmp_path / "run", "last")["step"] == 20


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    checkpoint.save({}, path)
    obj = torch.load(path, weights_only=True)
    obj["format_version"] = 99
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="written by a newer seqcli"):
        checkpoint.load(path)
