"""`seqcli plugins new`: a package skeleton whose own tests pass on first run."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("kind", ["cell", "dataset", "task"])
def test_new_plugin_skeletons_pass_their_own_tests(cli, tmp_path, kind):
    out = cli("plugins", "new", kind, f"my_{kind}", "--dir", tmp_path).stdout
    root = tmp_path / f"seqcli-my_{kind}"
    assert f"wrote {root}" in out
    assert f'my_{kind} = "seqcli_my_{kind}:My{kind.capitalize()}"' in (root / "pyproject.toml").read_text()
    from seqcli import __version__
    from seqcli.api import API_VERSION

    code = (root / "src" / f"seqcli_my_{kind}" / "__init__.py").read_text()
    assert f'api_version = "{API_VERSION}"' in code  # the API it is written against: this one
    assert f'"seqcli>={".".join(__version__.split(".")[:2])}"' in (root / "pyproject.toml").read_text()
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                            capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout and "failed" not in result.stdout


def test_new_plugin_refuses_bad_names_and_existing_folders(cli, tmp_path):
    bad = cli("plugins", "new", "cell", "My-Cell", "--dir", tmp_path, ok=False)
    assert bad.exit_code == 2 and "use lower-case letters, digits and underscores" in bad.stderr
    bad = cli("plugins", "new", "optimizer", "x", "--dir", tmp_path, ok=False)
    assert bad.exit_code == 2 and "unknown plugin kind 'optimizer'; choose one of: cell, task, dataset" in bad.stderr
    cli("plugins", "new", "cell", "twice", "--dir", tmp_path)
    marker = tmp_path / "seqcli-twice" / "README.md"
    marker.write_text("mine")
    again = cli("plugins", "new", "cell", "twice", "--dir", tmp_path, ok=False)
    assert again.exit_code == 2 and "already exists" in again.stderr and marker.read_text() == "mine"


def test_new_plugin_refuses_a_name_whose_package_is_installed(cli, tmp_path):
    """seqcli-fasta (an example plugin the test extra installs) holds 'fasta': a new
    seqcli-fasta would replace it when installed."""
    pytest.importorskip("seqcli_fasta")
    taken = cli("plugins", "new", "dataset", "fasta", "--dir", tmp_path, ok=False)
    assert taken.exit_code == 2 and taken.stderr.count("\n") == 1
    assert "plugin name 'fasta': the package seqcli-fasta 0." in taken.stderr
    assert "is installed already, and a new package of that name would replace it" in taken.stderr
    assert not (tmp_path / "seqcli-fasta").exists()
