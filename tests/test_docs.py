"""The documentation site: built strictly (a broken link or anchor fails it), searchable, and
its references generated from the code and complete: every command and option `--help`
shows, every `train:` key with its type, default and help, every built-in task, and every
name of the plugin API with its docstring."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("mkdocs")
pytest.importorskip("material")

from seqcli.cli import app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))

import reference  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    return out


def test_the_site_builds_strictly_with_every_page_and_search(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    pages = {doc["location"].split("#")[0] for doc in index["docs"]}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    titles = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert len(titles) >= 15
    for title in titles:  # every section of the README is a page of the guide, and searchable
        assert f"guide/{reference_slug(title)}/" in pages, title
    for page in ("reference/commands/", "reference/keys/", "reference/tasks/", "reference/api/"):
        assert page in pages
    found = {doc["location"] for doc in index["docs"] if "keep_checkpoints" in doc["text"]}
    assert any(location.startswith("reference/keys/") for location in found)
    assert (site / "serve-seq2seq.png").exists()  # the pictures the guide shows


def reference_slug(title: str) -> str:
    import hooks

    return hooks.slug(title.replace("`", ""))


def test_every_command_and_option_is_in_the_commands_page():
    page = reference.cli_page()
    for name, command in reference.commands():
        assert f"## `{name}`" in page
        shown = CliRunner().invoke(app, [*name.split()[1:], "--help"], prog_name="seqcli").output
        for param in reference.options(command):
            for flag in getattr(param, "opts", []):
                if flag.startswith("-"):
                    assert flag in shown, (name, flag)  # the page's options are the ones --help shows
                    assert f"`{flag}`" in page, (name, flag)
            if param.param_type_name == "option":
                assert (param.help or "").strip(), f"{name} {param.opts[0]} has no help"


def test_every_train_key_has_its_type_default_and_help():
    import dataclasses

    from seqcli.config import TrainConfig

    rows = {key: (kind, value, text) for key, kind, value, text in reference.train_keys()}
    assert set(rows) == {f.name for f in dataclasses.fields(TrainConfig)}
    for key, (kind, value, text) in rows.items():
        assert kind and value and text, f"train.{key} lacks its type, default or help"
    assert rows["batch_size"][0] == "integer (>= 1, <= 65,536)" and rows["batch_size"][1] == "`32`"
    assert rows["nonfinite"][0] == "one of `stop`, `skip`"
    page = reference.keys_page()
    assert all(f"| `{key}` |" in page for key in rows)


def test_every_built_in_task_has_its_keys_and_sample_options_with_help():
    from seqcli import registry
    from seqcli.schema import method_parameters, parameters

    page = reference.tasks_page()
    for name in registry.names("task"):
        if registry.info("task", name).package != "seqcli":
            continue
        assert f"## `{name}`" in page
        section = page.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        cls = registry.load("task", name)
        for method, keys in (("__init__", parameters(cls.__init__)),
                             ("build_model", method_parameters(cls, "build_model")),
                             ("sample", method_parameters(cls, "sample"))):
            helps = reference.documented(cls, method)
            for key in keys:
                if key in ("self", "model", "fields", "data", "cell"):
                    continue
                assert re.search(rf"^\| `{key}` \| .+ \| .+ \| \S.* \|$", section, re.M), (name, key, "not listed")
                assert helps.get(key), f"{name}: {method}'s `{key}` has no help (a docstring line `{key}`: ...)"


def test_every_name_of_the_plugin_api_is_documented():
    import inspect

    import seqcli.api

    page = reference.api_page()
    for name in seqcli.api.__all__:
        obj = getattr(seqcli.api, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == "seqcli.api":
            assert inspect.getdoc(obj), f"seqcli.api.{name} has no docstring"
            assert f"### `{name}`" in page, name
