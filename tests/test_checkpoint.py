"""Checkpoints: one typed record, written atomically, complete on their own, checked on load."""

import os

import pytest
import torch

from seqcli import api
from seqcli.errors import CheckpointError, SeqcliError
from seqcli.train import checkpoint


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"step": 1, "w": torch.ones(3)}, path)

    def dies_halfway(obj, f):
        f.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(SeqcliError, match="cannot write checkpoint .*no space left on the device"):
        checkpoint.save({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


@pytest.fixture
def trained(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run")
    return tmp_path / "run"


def test_run_directory_checkpoint_is_self_contained(trained):
    ckpt = checkpoint.load(trained)
    assert ckpt.path.endswith("best.pt")
    assert ckpt.recipe.model["hidden_size"] == 32
    assert ckpt.fields["text"].tokens[0] == "<unk>"
    assert ckpt.plugins["task"] == checkpoint.PluginRecord("language_model", "seqcli", ckpt.plugins["task"].version)
    assert ckpt.optimizer is not None and ckpt.rng is not None and ckpt.best.step == ckpt.step
    raw = torch.load(trained / "checkpoints" / "best.pt", weights_only=True)
    assert raw["format_version"] == checkpoint.FORMAT_VERSION and raw["api_version"] == api.API_VERSION
    assert checkpoint.load(trained, "last").step == 20


def rewrite(path, change):
    """Change a checkpoint as an attacker would: the checksum, unless removed, is made to
    match again, so that what is checked next is the change itself."""
    obj = torch.load(path, weights_only=True)
    change(obj)
    torch.save(checkpoint.seal(obj) if "checksum" in obj else obj, path)


def test_format_1_checkpoints_are_migrated(trained, cli):
    path = trained / "checkpoints" / "best.pt"

    def to_format_1(obj):
        obj["format_version"] = 1
        for key in ("position", "window", "ranks", "api_version", "data_info", "checksum"):
            obj.pop(key)

    rewrite(path, to_format_1)
    ckpt = checkpoint.load(path)
    assert (ckpt.position, ckpt.tally.loss_sum, ckpt.tally.loss_steps, ckpt.ranks, ckpt.data_info) == (0, 0.0, 0, None, {})
    assert cli("sample", path, "--length", "20", "--seed", "1").stdout.strip()


CRAFTED = {
    "no recipe": (lambda o: o.pop("recipe"), "damaged checkpoint: missing recipe"),
    "format_version of the wrong type": (lambda o: o.update(format_version="2"), "format_version must be a positive integer"),
    "recipe as a string": (lambda o: o.update(recipe="dataset: text"), "the stored recipe is not a mapping"),
    "step of the wrong type": (lambda o: o.update(step="20"), "step must be a non-negative integer"),
    "negative epoch": (lambda o: o.update(epoch=-1), "epoch must be a non-negative integer"),
    "unknown model key": (lambda o: o["recipe"]["model"].update(hidden_sizes=3), "model.hidden_sizes: unknown key (did you mean 'hidden_size'?)"),
    "negative hidden_size": (lambda o: o["recipe"]["model"].update(hidden_size=-4), "model.hidden_size: must be >= 1"),
    "enormous hidden_size": (lambda o: o["recipe"]["model"].update(hidden_size=10**12), "model.hidden_size: must be >= 1 and <= 65536"),
    "NaN weights": (lambda o: next(iter(o["model"].values())).fill_(float("nan")), "hold NaN or infinite values"),
    "no checksum": (lambda o: o.pop("checksum"), "damaged checkpoint: no checksum"),
    "weights not tensors": (lambda o: o.update(model={"w": [1, 2]}), "model must map parameter names to tensors"),
    "vocabulary of the wrong type": (lambda o: o["fields"].update(text={"kind": "vocab", "tokens": 5}), "damaged checkpoint: fields"),
    "plugins of the wrong type": (lambda o: o["plugins"].update(cell=["lstm"]), "plugins.cell must name"),
    "unknown plugin kind": (lambda o: o["plugins"].update(optimizer={"name": "a", "package": "b", "version": "1"}), "plugins.optimizer"),
    "a plugin package that is not installed": (
        lambda o: o["plugins"].update(cell={"name": "lstm", "package": "seqcli-gone", "version": "0.4"}),
        "built with cell 'lstm' from package seqcli-gone 0.4, which is not usable here"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_checkpoint_is_one_line(trained, cli, case):
    change, message = CRAFTED[case]
    path = trained / "checkpoints" / "best.pt"
    rewrite(path, change)
    for command in (("sample", path), ("evaluate", path), ("resume", trained)):
        if command[0] == "resume":
            rewrite(trained / "checkpoints" / "last.pt", change)
        result = cli(*command, ok=False)
        assert result.exit_code == 2, (case, command, result.stdout, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (case, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr


def test_special_files_are_refused(cli, tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    result = cli("sample", fifo, ok=False)
    assert result.exit_code == 2 and "not a regular file" in result.stderr
    with pytest.raises(CheckpointError, match="not a regular file"):
        checkpoint.load("/dev/null")


def test_newer_format_is_refused(trained):
    path = trained / "checkpoints" / "best.pt"
    rewrite(path, lambda o: o.update(format_version=99))
    with pytest.raises(CheckpointError, match="written by a newer seqcli"):
        checkpoint.load(path)


def test_stored_data_paths_are_checked_when_evaluate_reads_them(trained, cli, corpus):
    os.remove(corpus)
    assert cli("sample", trained, "--length", "5").stdout  # sampling needs no data
    result = cli("evaluate", trained, ok=False)
    assert result.exit_code == 2 and "dataset.path: file not found" in result.stderr

    def dev_zero(obj):
        obj["recipe"]["dataset"]["path"] = "/dev/zero"

    rewrite(trained / "checkpoints" / "best.pt", dev_zero)
    result = cli("evaluate", trained, ok=False)  # would read until memory runs out
    assert result.exit_code == 2 and "dataset.path: not a regular file: /dev/zero" in result.stderr
