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
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    return out


def test_the_site_builds_strictly_with_every_page_and_search(site):
    import documentation

    index = json.loads((site / "search" / "search_index.json").read_text())
    pages = {doc["location"].split("#")[0] for doc in index["docs"]}
    written = documentation.pages()
    assert len(written) >= 19
    for page in written:  # every page in the nav is built and searchable
        assert ("" if page.stem == "index" else f"{page.stem}/") in pages, page.name
    assert {p.name for p in documentation.DOCS.glob("*.md")} == {p.name for p in written} | {"index.md"}
    for page in ("reference/commands/", "reference/keys/", "reference/tasks/", "reference/api/"):
        assert page in pages
    found = {doc["location"] for doc in index["docs"] if "keep_checkpoints" in doc["text"]}
    assert any(location.startswith("reference/keys/") for location in found)
    assert (site / "serve-seq2seq.png").exists()  # the pictures the serving page shows


def test_a_broken_link_fails_the_build(tmp_path):
    """The build is strict: a page linking to a section that does not exist stops it."""
    import shutil

    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "changelog.md").write_text("# Changelog\n\nSee [nothing](recipes.md#no-such-section).\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "out")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode != 0 and "no-such-section" in result.stderr


def console_examples(text: str) -> list[tuple[str, str]]:
    """(command, the line it prints) of each ```console example whose command is seqcli's."""
    out = []
    for block in re.findall(r"```console\n(.*?)\n```", text, re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ seqcli ") and i + 1 < len(lines) and lines[i + 1].startswith("error: "):
                out.append((line[2:], lines[i + 1]))
    return out


TINY = ["train.max_steps=4", "train.eval_every=4", "train.log_every=2", "train.batch_size=8", "model.hidden_size=16"]


def test_every_error_the_errors_page_shows_is_the_one_seqcli_prints(cli, tmp_path, monkeypatch):
    import shlex

    monkeypatch.chdir(tmp_path)
    cli("run", "reverse", *TINY, "--run-dir", "runs/reverse")
    cli("run", "char-lm", *TINY, "--run-dir", "runs/quickstart")
    (tmp_path / "my.yaml").write_text("dataset: {name: text, level: char}\ntask: {name: language_model}\nmodel:\n"
                                      "  cell: {name: lstm}\n  hiden_size: 64\ntrain: {max_steps: 10}\n")
    examples = console_examples((ROOT / "docs" / "errors.md").read_text(encoding="utf-8"))
    assert len(examples) >= 15
    for command, expected in examples:
        result = cli(*shlex.split(command)[1:], ok=False)
        printed = result.stderr.strip().splitlines()
        assert result.exit_code != 0, command
        pattern = "^" + ".*".join(re.escape(part) for part in expected.split("...")) + "$"
        assert printed and re.match(pattern, printed[-1]), (command, expected, printed)


def test_the_python_examples_run(tmp_path, monkeypatch, cli):
    """Each ```python block of the pages, run as written next to the runs it names (tiny)."""
    import documentation

    monkeypatch.chdir(tmp_path)
    cli("run", "reverse", *TINY, "--run-dir", "runs/reverse")
    cli("run", "char-lm", *TINY, "--run-dir", "runs/quickstart")
    blocks = [(name, b) for name, text in documentation.texts() for b in re.findall(r"```python\n(.*?)\n```", text, re.S)]
    assert blocks
    for name, code in blocks:
        exec(compile(code, name, "exec"), {})


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


def test_every_key_of_the_built_in_datasets_cells_optimizers_and_schedulers_has_help():
    found = reference.plugin_keys()
    assert {section for section, _, _ in found} == {"dataset", "model.cell", "train.optimizer", "train.scheduler"}
    names = {name for _, name, _ in found}
    assert {"text", "pairs", "series", "synthetic", "lstm", "rnn", "sgd", "adam", "cosine", "plateau"} <= names
    page = reference.keys_page()
    for section, name, keys in found:
        for key, kind, value, text in keys:
            assert kind and value and text, f"{section} {name}: `{key}` lacks its type, default or help"
            assert f"| `{key}` | {kind} |" in page
    assert any(key == "folds" for _, _, keys in found for key, *_ in keys)


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

    import seqcli.layers

    page = reference.api_page()
    for module in (seqcli.api, seqcli.layers):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"
                assert f"### `{name}`" in page, name
            else:
                assert f"| `{name}` |" in page, name


def test_search_finds_a_key_in_the_built_site_in_a_browser(site):
    """The built site, served on 127.0.0.1 and opened in headless Chromium: typing a key in
    its search box lists the reference page that holds it."""
    import functools
    import http.server
    import threading

    from test_serve import BROWSER_ARGS, CHROMIUM

    if CHROMIUM is None:
        pytest.skip("the site's search is tested in Chromium from the system's packages (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.click("input.md-search__input")
            page.keyboard.type("keep_checkpoints")
            page.wait_for_selector(".md-search-result__item", timeout=20_000)
            links = page.eval_on_selector_all(".md-search-result__item a", "els => els.map(e => e.href)")
            assert any("reference/keys/" in link for link in links), links
            browser.close()
    finally:
        server.shutdown()
