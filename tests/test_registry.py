"""Plugins found through entry points: third-party ones, broken ones, and name clashes."""

import textwrap

import pytest

from seqcli import registry
from seqcli.errors import PluginError


def fake_package(root, name, entry_points: dict, modules: dict, version="1.0"):
    """An installed distribution on sys.path: a dist-info folder with entry points, and modules."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


MIN_RNN = """
    import torch
    from seqcli.cells.rnn import RNN

    class MinimalRNN(RNN):
        '''An Elman cell under a third-party name, run by seqcli's generic step loop.'''
        @classmethod
        def fused_kernel(cls, **options):
            return None
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    registry.forget()


def test_builtins_come_through_entry_points():
    for kind, name in [("cell", "lstm"), ("cell", "gru"), ("cell", "rnn"), ("task", "language_model"),
                       ("dataset", "text")]:
        info = registry.info(kind, name)
        assert info.package == "seqcli"
        assert registry.load(kind, name).__module__.startswith("seqcli.")


def test_third_party_cell_is_found_and_trains(site, cli, recipe, tmp_path):
    fake_package(site, "seqcli-minrnn", {"seqcli.cells": {"minrnn": "seqcli_minrnn:MinimalRNN"}},
                 {"seqcli_minrnn": MIN_RNN}, version="0.3")
    registry.forget()
    assert registry.info("cell", "minrnn").package == "seqcli-minrnn"
    cli("run", recipe, "model.cell.name=minrnn", "--run-dir", tmp_path / "run")
    import torch

    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert ckpt["plugins"]["cell"] == {"name": "minrnn", "package": "seqcli-minrnn", "version": "0.3"}
    assert cli("sample", tmp_path / "run", "--length", "5").stdout.startswith("the ")


def test_broken_plugin_is_reported_and_breaks_nothing_else(site, cli, recipe, tmp_path):
    fake_package(site, "seqcli-broken", {"seqcli.cells": {"broken": "seqcli_broken:Cell"},
                                         "seqcli.datasets": {"notadataset": "seqcli_wrongkind:Thing"}},
                 {"seqcli_broken": "import no_such_module_anywhere\n", "seqcli_wrongkind": "class Thing: pass\n"})
    registry.forget()
    with pytest.raises(PluginError) as info:
        registry.load("cell", "broken")
    message = str(info.value)
    assert "cell 'broken' failed to load (seqcli-broken 1.0, entry point 'broken = seqcli_broken:Cell'" in message
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in message
    with pytest.raises(PluginError, match="is not a subclass of seqcli.api.Dataset"):
        registry.load("dataset", "notadataset")
    listing = cli("plugins", "list").stdout
    assert "failed: ModuleNotFoundError" in listing and "lstm" in listing
    cli("run", recipe, "--run-dir", tmp_path / "run")  # everything else still works
    used = cli("run", recipe, "model.cell.name=broken", "--run-dir", tmp_path / "run2", ok=False)
    assert used.exit_code == 2 and "cell 'broken' failed to load" in used.stderr


def test_checkpoint_whose_plugin_is_gone_names_the_package(site, cli, recipe, tmp_path):
    fake_package(site, "seqcli-minrnn", {"seqcli.cells": {"minrnn": "seqcli_minrnn:MinimalRNN"}},
                 {"seqcli_minrnn": MIN_RNN}, version="0.3")
    registry.forget()
    cli("run", recipe, "model.cell.name=minrnn", "--run-dir", tmp_path / "run")
    import shutil

    shutil.rmtree(site / "seqcli_minrnn-0.3.dist-info")
    registry.forget()
    result = cli("sample", tmp_path / "run", ok=False)
    assert result.exit_code == 2
    assert "built with cell 'minrnn' from package seqcli-minrnn 0.3" in result.stderr
    assert "install the package seqcli-minrnn" in result.stderr


def test_no_plugins_turns_third_party_autoload_off(site, cli, monkeypatch):
    fake_package(site, "seqcli-minrnn", {"seqcli.cells": {"minrnn": "seqcli_minrnn:MinimalRNN"}},
                 {"seqcli_minrnn": MIN_RNN}, version="0.3")
    registry.forget()
    assert "minrnn" in registry.names("cell")
    monkeypatch.setenv("SEQCLI_NO_PLUGINS", "1")
    registry.forget()
    assert "minrnn" not in registry.names("cell") and "lstm" in registry.names("cell")
    monkeypatch.delenv("SEQCLI_NO_PLUGINS")
    registry.forget()
    listing = cli("--no-plugins", "plugins", "list").stdout
    assert "minrnn" not in listing and "lstm" in listing
