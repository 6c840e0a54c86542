"""The plugin contract, as a third-party author meets it: names that cannot be taken over,
options that reach the command line, paths, splits, cell options, isolation, versions,
the stable API and the layers beneath it."""

import ast
import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

import seqcli
from seqcli import registry
from seqcli.errors import PluginError
from seqcli.train import checkpoint
from test_registry import fake_package

ROOT = Path(__file__).resolve().parent.parent

ELMAN = '''
import torch
from torch import nn

from seqcli.api import Cell, ConfigError


class Elman(Cell):
    """h_t = tanh(W x_t + U h_{t-1}), written against the stable API alone."""

    api_version = "1.0"

    def __init__(self, input_size: int, hidden_size: int, scale: float = 1.0):
        super().__init__(input_size, hidden_size)
        if not 0 < scale <= 2:
            raise ConfigError("scale", f"must be in (0, 2], got {scale}")
        self.w_in = nn.Linear(input_size, hidden_size)
        self.w_rec = nn.Linear(hidden_size, hidden_size, bias=False)

    def project(self, x):
        return self.w_in(x)

    def step(self, u, state):
        return (torch.tanh(u + self.w_rec(state[0])),)
'''


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    registry.forget()
    yield root
    registry.forget()


def flat(text: str) -> str:
    """A table's text with its wrapping undone (whitespace runs made one space)."""
    return " ".join(text.split())


def install(site, package, entry_points, modules, version="1.0"):
    fake_package(site, package, entry_points, {k: textwrap.dedent(v) for k, v in modules.items()}, version)
    registry.forget()


# 1. names --------------------------------------------------------------------------------------

def test_two_third_party_packages_claiming_one_name_need_the_qualified_name(site, cli, recipe, tmp_path):
    install(site, "pkg-a", {"seqcli.cells": {"twin": "a_mod:Elman"}}, {"a_mod": ELMAN})
    cli("run", recipe, "model.cell.name=twin", "--run-dir", tmp_path / "a")  # one package: the plain name works
    install(site, "pkg-b", {"seqcli.cells": {"twin": "b_mod:Elman"}}, {"b_mod": ELMAN}, version="2.0")
    with pytest.raises(PluginError) as info:
        registry.load("cell", "twin")
    assert str(info.value) == ("cell 'twin' is registered by more than one package; name one of: "
                               "'pkg-a:twin' (pkg-a 1.0), 'pkg-b:twin' (pkg-b 2.0)")
    assert registry.load("cell", "pkg-b:twin").__module__ == "b_mod"
    listing = flat(cli("plugins", "list").stdout)
    assert "clash: 'twin' is registered by 2 packages: name it 'pkg-b:twin'" in listing
    # the run made before pkg-b arrived still loads the package it recorded
    assert cli("sample", tmp_path / "a", "--length", "5").stdout.startswith("the ")
    cli("run", recipe, "model.cell.name=pkg-b:twin", "--run-dir", tmp_path / "b")
    assert checkpoint.load(tmp_path / "b").plugins["cell"].package == "pkg-b"
    used = seqcli.load(tmp_path / "b").plugins  # which packages and versions a run used
    assert (used["cell"].qualified, used["cell"].version) == ("pkg-b:twin", "2.0")
    assert (used["task"].package, used["dataset"].name) == ("seqcli", "text")
    assert cli("sample", tmp_path / "b", "--length", "5").stdout.startswith("the ")
    cli("resume", tmp_path / "a", "train.max_steps=24")  # resuming keeps the recorded package too


def test_a_plugin_never_shadows_seqcli_own_names(site, cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "before")
    install(site, "seqcli-extras", {"seqcli.cells": {"lstm": "extras_mod:Elman"}}, {"extras_mod": ELMAN})
    assert registry.load("cell", "lstm").__module__ == "seqcli.cells.lstm"
    assert registry.load("cell", "seqcli-extras:lstm").__module__ == "extras_mod"
    assert registry.load("cell", "seqcli:lstm").__module__ == "seqcli.cells.lstm"
    assert cli("sample", tmp_path / "before", "--length", "5").stdout.startswith("the ")
    cli("run", recipe, "--run-dir", tmp_path / "after")
    assert checkpoint.load(tmp_path / "after").plugins["cell"].package == "seqcli"
    # a name two packages register is recorded qualified; the run before the second one, plain
    assert "name: seqcli:lstm" in (tmp_path / "after" / "recipe.yaml").read_text()
    assert "name: lstm" in (tmp_path / "before" / "recipe.yaml").read_text()
    cli("run", recipe, "model.cell.name=seqcli-extras:lstm", "--run-dir", tmp_path / "theirs")
    assert checkpoint.load(tmp_path / "theirs").plugins["cell"].package == "seqcli-extras"
    assert cli("sample", tmp_path / "theirs", "--length", "5").stdout.startswith("the ")
    listing = flat(cli("plugins", "list").stdout)
    assert "shadowed by seqcli's own 'lstm': name it 'seqcli-extras:lstm'" in listing
    assert "'lstm' means this one (also registered by: seqcli-extras:lstm)" in listing
    result = cli("plugins", "new", "cell", "lstm", "--dir", tmp_path, ok=False)
    assert result.exit_code == 2 and "'lstm' is the name of seqcli's own cell" in result.stderr
    assert not (tmp_path / "seqcli-lstm").exists()


def test_a_packages_recipe_means_that_packages_plugins_first(site, cli, corpus, tmp_path):
    recipe = (f"dataset: {{name: text, path: {corpus}}}\ntask: {{name: language_model}}\n"
              "model: {cell: {name: twin}, hidden_size: 16, embedding_size: 8, num_layers: 1}\n"
              "train: {max_steps: 4, eval_every: 4, batch_size: 4, seq_len: 8}\nsample: {length: 5}\n")
    for package, module in (("pkg-a", "a_mod"), ("pkg-b", "b_mod")):
        install(site, package, {"seqcli.cells": {"twin": f"{module}:Elman"},
                                "seqcli.recipes": {package: f"{module}_recipes"}}, {module: ELMAN})
        (site / f"{module}_recipes").mkdir()
        (site / f"{module}_recipes" / "__init__.py").write_text("")
        (site / f"{module}_recipes" / f"{package}-lm.yaml").write_text(recipe)
    registry.forget()
    for package in ("pkg-a", "pkg-b"):
        cli("run", f"{package}-lm", "--run-dir", tmp_path / package)
        assert checkpoint.load(tmp_path / package).plugins["cell"].package == package
        assert f"name: {package}:twin" in (tmp_path / package / "recipe.yaml").read_text()  # recorded qualified
    mine = tmp_path / "mine.yaml"
    mine.write_text(recipe)  # the user's own recipe: two packages, so the name must be qualified
    result = cli("recipes", "validate", mine, ok=False)
    assert result.exit_code == 2 and "cell 'twin' is registered by more than one package" in result.stderr


def test_in_process_calls_leave_no_state_behind(cli):
    import os

    import torch

    threads, environ = torch.get_num_threads(), dict(os.environ)
    assert "mingru" not in cli("--disable-plugin", "seqcli-mingru", "plugins", "list", "--no-load").stdout
    assert "mingru" in cli("plugins", "list", "--no-load").stdout  # the switch ended with its call
    assert dict(os.environ) == environ and torch.get_num_threads() == threads


def test_one_package_can_be_switched_off(site, cli, recipe, tmp_path, monkeypatch):
    install(site, "seqcli-elman", {"seqcli.cells": {"elman": "elman_mod:Elman"}}, {"elman_mod": ELMAN})
    cli("run", recipe, "model.cell.name=elman", "--run-dir", tmp_path / "run")
    listing = cli("--disable-plugin", "seqcli-elman", "plugins", "list").stdout
    assert "elman" not in listing and "lstm" in listing
    monkeypatch.delenv("SEQCLI_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("SEQCLI_DISABLE_PLUGINS", "seqcli_Elman")  # names compare as pip compares them
    registry.forget()
    assert "elman" not in registry.names("cell")
    result = cli("sample", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and "the package is switched off" in result.stderr
    monkeypatch.delenv("SEQCLI_DISABLE_PLUGINS")
    registry.forget()
    assert "elman" in registry.names("cell")


# 2. a task's own options on the command line -------------------------------------------------

REGRESS = '''
import torch
from typing import Annotated

from seqcli.api import Data, Dataset, Labels, Range, Samples, StepResult, Task, device_of


class Const(Dataset):
    """Sequences of ones of random length; the target is the length."""

    api_version = 1

    def __init__(self, size: Annotated[int, Range(10, 10_000)] = 200, splits: list[str] = ("train", "valid")):
        self.size, self.splits = size, list(splits)

    def load(self):
        g = torch.Generator().manual_seed(0)
        make = lambda n: [torch.ones(int(torch.randint(1, 6, (1,), generator=g))) for _ in range(n)]
        return Data(splits={s: make(self.size) for s in self.splits}, fields={"label": Labels(["x"])})


class Count(Task):
    api_version = "1.0"

    def build_model(self, data, cell):
        return torch.nn.Linear(1, 1)

    def batches(self, data, config, epoch):
        xs = data.splits["train"]
        for i in range(0, len(xs), config.batch_size):
            yield xs[i:i + config.batch_size]

    def train_step(self, model, batch, carry):
        assert type(model) is torch.nn.Linear, type(model)  # never a DistributedDataParallel wrapper
        x = torch.tensor([[float(len(b))] for b in batch], device=device_of(model))
        return StepResult(((model(x) - x) ** 2).mean(), len(batch))

    def evaluate(self, model, data, split, config, tolerance: Annotated[float, Range(0, 10)] = 0.5):
        xs = data.splits[split]
        if config.eval_batches is not None:
            xs = xs[: config.eval_batches * config.batch_size]
        x = torch.tensor([[float(len(b))] for b in xs], device=device_of(model))
        err = (model(x) - x).abs()
        return {"loss": (err ** 2).mean().item(), "within": (err <= tolerance).float().mean().item()}

    def sample(self, model, fields, inputs: list[str] = (), precision: Annotated[int, Range(0, 8)] = 2,
               shout: bool = False):
        """Predict each input's length."""
        out = [f"{model(torch.tensor([[float(len(t))]], device=device_of(model))).item():.{precision}f}" for t in inputs]
        return Samples([o + ("!" if shout else "") for o in out])
'''


@pytest.fixture
def count_run(site, cli, tmp_path):
    install(site, "seqcli-count", {"seqcli.tasks": {"count": "count_mod:Count"},
                                   "seqcli.datasets": {"const": "count_mod:Const"}}, {"count_mod": REGRESS})
    (tmp_path / "count.yaml").write_text("dataset: {name: const}\ntask: {name: count}\nmodel: {cell: {name: gru}}\n"
                                         "train: {max_steps: 30, eval_every: 30, batch_size: 8, optimizer: {name: adam, lr: 0.1}}\n"
                                         "sample: {inputs: [abc], precision: 3}\n")
    cli("run", tmp_path / "count.yaml", "--run-dir", tmp_path / "run")
    return tmp_path / "run"


def test_a_plugin_task_s_sample_and_evaluate_options_are_command_line_options(count_run, cli):
    out = cli("sample", count_run, "--input", "abcd", "--precision", "1").stdout.strip()
    assert len(out.split(".")[1]) == 1  # one decimal
    assert cli("sample", count_run, "--input", "ab", "--precision=0", "--shout").stdout.strip().endswith("!")
    assert len(cli("sample", count_run, "--input", "ab").stdout.strip().split(".")[1]) == 3  # the recipe's value
    bad = cli("sample", count_run, "--input", "ab", "--beam-size", "4", ok=False)
    assert bad.exit_code == 2 and bad.stderr == (
        "error: --beam-size: the count task does not take this option (it takes: --precision, --shout)\n")
    bad = cli("sample", count_run, "--input", "ab", "--precision", "9", ok=False)
    assert bad.exit_code == 2 and "--precision: must be >= 0 and <= 8, got 9" in bad.stderr
    helped = cli("sample", count_run, "--help").stdout
    assert "Options of the count task" in helped and "--precision" in helped and "an integer >= 0 and <= 8" in helped
    assert "--shout / --no-shout" in helped and "Predict each input's length." in helped
    scored = json.loads(cli("evaluate", count_run, "--split", "valid", "--json", "--tolerance", "2").stdout)
    assert scored["within"] >= json.loads(cli("evaluate", count_run, "--split", "valid", "--json",
                                               "--tolerance", "0").stdout)["within"]
    assert "--tolerance" in cli("evaluate", count_run, "--help").stdout


def test_builtin_task_options_come_from_its_signature(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "lm")
    helped = cli("sample", tmp_path / "lm", "--help").stdout
    for option in ("--prime, -p", "--temperature, -t", "--top-k", "--num-samples, -s", "--seed"):
        assert option in helped
    assert "--beam-size" not in helped
    bad = cli("sample", tmp_path / "lm", "--beam-size", "2", ok=False)
    assert "the language_model task does not take this option (it takes: --prime, --length" in bad.stderr


def test_a_subclass_adds_sample_options_without_restating_its_parents():
    """A task's sample options are declared once: a subclass's `sample` takes its own options
    and passes `**options` on; its options are then the parent's, in order, and its own."""
    from typing import Annotated

    from seqcli.api import Range
    from seqcli.inference import sample_parameters
    from seqcli.schema import method_parameters
    from seqcli.tasks.seq2seq import Generate, Seq2Seq

    class Loud(Seq2Seq):
        def sample(self, model, fields, inputs=(), *, volume: Annotated[int, Range(0, 11)] = 3, **options):
            return super().sample(model, fields, inputs, **options)

    writer = list(sample_parameters(Generate))
    assert writer[:3] == ["inputs", "beam_size", "n_best"] and "seed" in writer
    assert list(sample_parameters(Seq2Seq)) == writer + ["coverage_penalty", "attention_plot"]
    assert list(sample_parameters(Loud)) == writer + ["coverage_penalty", "attention_plot", "volume"]
    assert method_parameters(Loud, "sample")["volume"][1] == 3


# 9. what the contract promises a task's methods ----------------------------------------------

def test_train_step_gets_the_task_s_own_model_in_distributed_training(count_run, site, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "seqcli", "run", tmp_path / "count.yaml", "train.max_steps=4",
                             "train.eval_every=4", "train.device=cpu", "--nproc-per-node", "2", "--run-dir",
                             tmp_path / "ddp"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert checkpoint.load(tmp_path / "ddp").step == 4


def test_the_task_kit_catches_an_evaluate_that_ignores_eval_batches(site):
    install(site, "seqcli-count", {"seqcli.tasks": {"count": "count_mod:Count"},
                                   "seqcli.datasets": {"const": "count_mod:Const"}}, {"count_mod": REGRESS})
    from seqcli.testing import check_task

    data = registry.load("dataset", "const")().load()
    assert "batching independence and eval_batches" in check_task(registry.load("task", "count"), data, lr=0.1)
    count = registry.load("task", "count")

    class Greedy(count):
        def evaluate(self, model, data, split, config, tolerance: float = 0.5):
            config = type(config)(batch_size=config.batch_size)  # drops eval_batches
            return super().evaluate(model, data, split, config, tolerance)

    with pytest.raises(AssertionError, match="must honour config.eval_batches"):
        check_task(Greedy, data, lr=0.1)

    class Newer(count):  # a 1.4 task must say which way each metric it reports is better
        api_version = "1.4"

    with pytest.raises(AssertionError, match=r"check_task\(Newer\): evaluate\(\) reports within without a direction"):
        check_task(Newer, data, lr=0.1)
    Newer.directions = {"within": "higher"}
    assert "every metric has a direction" in check_task(Newer, data, lr=0.1)


# 3. paths -----------------------------------------------------------------------------------

PATHS = '''
import torch
from pathlib import Path
from typing import Annotated

from seqcli.api import Data, Dataset, File, Folder, Vocab


class Lines(Dataset):
    def __init__(self, path: Annotated[Path, File()], extra: Annotated[Path, Folder()] | None = None,
                 note: Path | None = None):
        assert isinstance(path, Path), type(path)  # the constructor gets the type it asked for
        self.path = path

    def load(self):
        text = self.path.read_text()
        vocab = Vocab(["<unk>"] + sorted(set(text)), "char")
        ids = torch.tensor([vocab.index[c] for c in text])
        cut = int(len(ids) * 0.9)
        return Data(splits={"train": ids[:cut], "valid": ids[cut:], "test": ids[cut:]}, fields={"text": vocab})
'''


def test_paths_in_a_recipe_start_from_the_recipe_folder(site, cli, tmp_path, corpus, monkeypatch):
    install(site, "seqcli-lines", {"seqcli.datasets": {"lines": "lines_mod:Lines"}}, {"lines_mod": PATHS})
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copy(corpus, project / "data" / "corpus.txt")
    (project / "recipe.yaml").write_text(
        "dataset: {name: lines, path: data/corpus.txt, extra: data, note: notes.txt}\ntask: {name: language_model}\n"
        "model: {cell: {name: gru}, hidden_size: 16, embedding_size: 8, num_layers: 1}\n"
        "train: {max_steps: 4, eval_every: 4, batch_size: 4, seq_len: 8}\nsample: {length: 5}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cli("run", project / "recipe.yaml", "--run-dir", tmp_path / "run")
    stored = checkpoint.load(tmp_path / "run").recipe.dataset.options
    assert stored["path"] == str(project / "data" / "corpus.txt") and stored["extra"] == str(project / "data")
    assert stored["note"] == str(project / "notes.txt")  # a plain Path is made absolute, not looked for
    monkeypatch.chdir(tmp_path)
    assert "loss" in cli("evaluate", tmp_path / "run").stdout  # from another folder
    # on the command line, a relative path starts from the current folder
    shutil.copy(corpus, tmp_path / "other.txt")
    checked = cli("recipes", "validate", project / "recipe.yaml", "dataset.path=other.txt", "--show").stdout
    assert f"path: {tmp_path / 'other.txt'}" in checked
    bad = cli("recipes", "validate", project / "recipe.yaml", "dataset.extra=data/corpus.txt", ok=False)
    assert "dataset.extra: folder not found: data/corpus.txt" in bad.stderr
    bad = cli("recipes", "validate", project / "recipe.yaml", f"dataset.extra={corpus}", ok=False)
    assert f"dataset.extra: not a folder: {corpus}" in bad.stderr


# 4. splits ----------------------------------------------------------------------------------

def test_a_dataset_without_a_validation_split_is_refused_before_the_run_folder(site, cli, tmp_path):
    install(site, "seqcli-count", {"seqcli.tasks": {"count": "count_mod:Count"},
                                   "seqcli.datasets": {"const": "count_mod:Const"}}, {"count_mod": REGRESS})
    (tmp_path / "r.yaml").write_text("dataset: {name: const, splits: [train]}\ntask: {name: count}\n"
                                     "model: {cell: {name: gru}}\ntrain: {max_steps: 4}\n")
    result = cli("run", tmp_path / "r.yaml", "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 2
    assert result.stderr == ("error: dataset const gave no 'valid' split (it gave: train); training needs 'train' "
                             "and 'valid' (built-in file datasets carve 'valid' from 'train' with valid_fraction)\n")
    assert not (tmp_path / "run").exists()


# 5. cell options ----------------------------------------------------------------------------

def test_cell_options_are_checked_by_validate_with_file_and_line(site, cli, recipe):
    install(site, "seqcli-elman", {"seqcli.cells": {"elman": "elman_mod:Elman"}}, {"elman_mod": ELMAN})
    result = cli("recipes", "validate", recipe, "model.cell={name: elman, scale: 3.0}", ok=False)
    assert result.exit_code == 2
    assert result.stderr == ("error: override 'model.cell={name: elman, scale: 3.0}': model.cell.scale: "
                             "must be in (0, 2], got 3.0\n")
    text = recipe.read_text().replace("cell: {name: lstm}", "cell: {name: elman, scale: 0}")
    recipe.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "elman" in l)
    result = cli("recipes", "validate", recipe, ok=False)
    assert result.stderr == f"error: {recipe}:{line}: model.cell.scale: must be in (0, 2], got 0.0\n"


# 8. the stable API, and the layers beneath it -------------------------------------------------

STABLE = {"seqcli.api", "seqcli.layers", "seqcli.testing", "seqcli.load"}


def seqcli_imports(path: Path) -> set[str]:
    """What a file imports of seqcli, by dotted name: `from seqcli import vocab` is
    "seqcli.vocab", `from seqcli.api import Cell` "seqcli.api" (imports inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "seqcli" and node.level == 0:
            found |= {f"seqcli.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "seqcli":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "seqcli" and a.name != "seqcli"}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "seqcli":
            found.add(f"seqcli.{node.attr}")  # `import seqcli` then `seqcli.load(...)`
    return found


def test_the_stable_api_check_sees_every_spelling(tmp_path):
    path = tmp_path / "plugin.py"
    path.write_text("from seqcli import vocab as V, load\nimport seqcli.recipe\ndef f():\n    from seqcli.data import batching\n"
                    "import seqcli\nseqcli.load('run')\nseqcli.runs.train\n")
    assert seqcli_imports(path) - STABLE == {"seqcli.vocab", "seqcli.recipe", "seqcli.data", "seqcli.runs"}


def test_the_built_in_tasks_use_only_the_stable_api():
    for path in (ROOT / "seqcli" / "tasks").glob("*.py"):
        outside = {m for m in seqcli_imports(path) - STABLE if not m.startswith("seqcli.tasks")}
        assert not outside, f"{path.name} imports {sorted(outside)}: a plugin task could not do the same"


def test_example_plugins_and_scaffolds_import_only_the_stable_api(cli, tmp_path):
    files = [p for p in (ROOT / "plugins").rglob("*.py")]
    for kind in ("cell", "task", "dataset"):
        cli("plugins", "new", kind, f"my_{kind}", "--dir", tmp_path)
        files += list((tmp_path / f"seqcli-my_{kind}").rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        outside = seqcli_imports(path) - STABLE
        assert not outside, f"{path} imports {sorted(outside)}, outside the stable API"


LOWER = {"seqcli.errors", "seqcli.deprecation", "seqcli.schema", "seqcli.config", "seqcli.subword", "seqcli.vocab",
         "seqcli.metrics"}


def test_the_api_sits_beneath_everything_that_implements_it():
    api = seqcli_imports(ROOT / "seqcli" / "api.py")
    assert api <= LOWER, api
    for module in LOWER:
        below = seqcli_imports(ROOT / "seqcli" / (module.split(".")[1] + ".py"))
        assert below <= LOWER - {module}, (module, below)
    # no cycle between the recipe code and the training code
    for path in (ROOT / "seqcli" / "recipe").glob("*.py"):
        assert not any(m.startswith("seqcli.train") for m in seqcli_imports(path)), path


def test_api_version_and_typed_marker():
    from seqcli import api

    assert api.API_VERSION == "1.4" and (ROOT / "seqcli" / "py.typed").exists()
    for name in api.__all__:
        assert hasattr(api, name), name
    assert api.INPUT == "input" and api.TARGET == "target" and api.TAGS == "tags"


# 6 and 10 live in test_registry-style tests below ------------------------------------------

def test_sys_exit_while_importing_is_isolated(site, cli):
    install(site, "seqcli-quitter", {"seqcli.cells": {"quitter": "quitter_mod:Cell"}},
            {"quitter_mod": "import sys\nsys.exit(3)\n"})
    result = cli("plugins", "list")
    assert "lstm" in result.stdout and "failed: called sys.exit(3) while being imported" in result.stdout
    assert "1 plugin(s) cannot be used" in result.stderr


def test_plugin_written_for_another_api_version_is_failed(site):
    install(site, "seqcli-future", {"seqcli.cells": {"future": "future_mod:Elman", "newer": "newer_mod:Elman"}},
            {"future_mod": ELMAN + "\nElman.api_version = 2\n", "newer_mod": ELMAN + "\nElman.api_version = '1.7'\n"})
    with pytest.raises(PluginError, match=r"written for seqcli plugin API 2.x; this seqcli provides 1.4"):
        registry.load("cell", "future")
    with pytest.raises(PluginError, match=r"needs seqcli plugin API 1.7; this seqcli provides 1.4 \(upgrade seqcli\)"):
        registry.load("cell", "newer")


def test_plugins_list_json_full_reasons_and_check_exit_codes(site, cli):
    reason = "why " * 60
    install(site, "seqcli-loud", {"seqcli.cells": {"loud": "loud_mod:Cell"}},
            {"loud_mod": f"raise RuntimeError({reason.strip()!r})\n"})
    listing = cli("plugins", "list").stdout  # CliRunner's output is a pipe, not a terminal
    assert all(len(line) <= 100 and line == line.rstrip() for line in listing.splitlines())  # wrapped, not cut
    listing = flat(listing)
    assert f"failed: RuntimeError: {reason.strip()}" in listing
    rows = json.loads(cli("plugins", "list", "--json").stdout)
    loud = [r for r in rows if r["name"] == "loud"][0]
    assert loud["package"] == "seqcli-loud" and loud["status"] == f"failed: RuntimeError: {reason.strip()}"
    assert {r["name"] for r in rows if r["package"] == "seqcli"} >= {"lstm", "text", "language_model"}
    result = cli("plugins", "check", ok=False)
    assert result.exit_code == 1 and "cell seqcli-loud:loud (seqcli-loud 1.0): failed: RuntimeError" in result.stderr
    ok = cli("plugins", "check", "seqcli")
    assert ok.exit_code == 0 and " ok, 0 failed" in ok.stdout


def test_packages_ship_recipes(site, cli, tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the width a table in a pipe keeps to
    install(site, "seqcli-cookbook", {"seqcli.recipes": {"cookbook": "cookbook_recipes"}}, {})
    folder = site / "cookbook_recipes"
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    shutil.copy(corpus, folder / "data" / "tiny.txt")  # beside the recipe, named relative to it
    (folder / "tiny-lm.yaml").write_text(
        "description: a tiny language model from a package\ndataset: {name: text, path: data/tiny.txt}\n"
        "task: {name: language_model}\nmodel: {cell: {name: gru}, hidden_size: 16, embedding_size: 8, num_layers: 1}\n"
        "train: {max_steps: 4, eval_every: 4, batch_size: 4, seq_len: 8}\nsample: {length: 5}\n")
    (folder / "char-lm.yaml").write_text("description: clashes with seqcli's own\n")
    listing = cli("recipes", "list").stdout
    assert all(len(line) <= 100 and line == line.rstrip() for line in listing.splitlines())  # wrapped, unpadded
    listing = flat(listing)
    assert "tiny-lm" in listing and "seqcli-cookbook" in listing and "a tiny language model from a package" in listing
    assert "seqcli-cookbook:char-lm" in listing  # seqcli's own char-lm keeps its name
    assert "pip install 'seqcli[digits]'" in listing  # descriptions are text, not markup
    assert "description: a tiny language model" in cli("recipes", "show", "tiny-lm").stdout
    assert "clashes" not in cli("recipes", "show", "char-lm").stdout
    assert "clashes" in cli("recipes", "show", "seqcli-cookbook:char-lm").stdout
    cli("run", "seqcli-cookbook:tiny-lm", "--run-dir", tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    copied = cli("recipes", "copy", "tiny-lm", mine / "lm.yaml").stdout  # with the file it names
    assert copied == f"wrote {mine / 'lm.yaml'}\nwrote {mine / 'data' / 'tiny.txt'}\n"
    assert (mine / "data" / "tiny.txt").read_text() == corpus.read_text()
    shown = cli("recipes", "validate", mine / "lm.yaml", "--show").stdout
    assert f"path: {mine / 'data' / 'tiny.txt'}" in shown  # the copy reads its own copy of the data
    (mine / "data" / "tiny.txt").write_text("mine now\n")
    refused = cli("recipes", "copy", "tiny-lm", mine / "other.yaml", ok=False)  # nothing written, nothing lost
    assert refused.exit_code == 2 and "tiny.txt already exists; pass --force" in refused.stderr
    assert not (mine / "other.yaml").exists() and (mine / "data" / "tiny.txt").read_text() == "mine now\n"
    rows = json.loads(cli("plugins", "list", "--json").stdout)
    assert any(r["kind"] == "recipes" and r["package"] == "seqcli-cookbook" and r["status"] == "ok (2 recipes)"
               for r in rows)


# 7. upgrades --------------------------------------------------------------------------------

def test_upgraded_plugin_names_versions_and_every_changed_key(site, cli, recipe, tmp_path):
    install(site, "seqcli-elman", {"seqcli.cells": {"elman": "elman_mod:Elman"}}, {"elman_mod": ELMAN},
            version="0.1.0")
    cli("run", recipe, "model.cell.name=elman", "model.num_layers=2", "--run-dir", tmp_path / "run")
    shutil.rmtree(site / "seqcli_elman-0.1.0.dist-info")
    renamed = ELMAN.replace("self.w_in", "self.input_weights").replace("self.w_rec", "self.recurrent_weights")
    install(site, "seqcli-elman", {"seqcli.cells": {"elman": "elman_mod2:Elman"}}, {"elman_mod2": renamed},
            version="0.2.0")
    result = cli("sample", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    message = result.stderr
    assert "cell 'elman' from seqcli-elman was 0.1.0 when saved, 0.2.0 now" in message
    for layer in (0, 1):  # every key in full, nothing cut
        for old, new in (("w_in.weight", "input_weights.weight"), ("w_in.bias", "input_weights.bias"),
                         ("w_rec.weight", "recurrent_weights.weight")):
            assert f"rnn.cells.{layer}.{old}" in message and f"rnn.cells.{layer}.{new}" in message


def test_python_api_loads_a_model_in_three_lines(cli, tmp_path):
    cli("run", "reverse", "train.max_steps=300", "train.eval_every=300", "model.hidden_size=64",
        "dataset.train_size=2000", "--run-dir", tmp_path / "rev")
    import seqcli

    model = seqcli.load(tmp_path / "rev")
    out = model.predict(["abc", "cab"])
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
    assert model.predict(["abc"], beam_size=3) == model.sample(inputs=["abc"], beam_size=3).lines
    assert set(model.evaluate(split="valid")) >= {"loss", "exact_match"}
    with pytest.raises(Exception, match="does not take this option"):
        model.sample(inputs=["abc"], prime="x")


def test_the_api_history_and_the_plugins_page_name_the_same_additions_per_version():
    """`seqcli.api`'s version history and the contract section of docs/plugins.md list,
    version by version, the same names."""
    import re

    def names(text):
        return {n.split("(")[0] for n in re.findall(r"`([^`]+)`", text)
                if re.fullmatch(r"[A-Za-z_][\w.]*(\(.*\))?", n)}

    api = (ROOT / "seqcli" / "api.py").read_text(encoding="utf-8")
    comment = api[: api.index("API_VERSION =")].rsplit("\n\n", 1)[1]
    history = " ".join(line[3:] for line in comment.splitlines()).split("History:")[1]
    parts = re.split(r"(\d\.\d) \(seqcli [\d.]+\):", history)
    documented = {parts[i]: names(parts[i + 1]) for i in range(1, len(parts), 2)}
    readme = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = " ".join(readme[readme.index("- **Versions.**"): readme.index("- **Signatures are the schema.**")].split())
    parts = re.split(r"(\d\.\d) added", block)
    told = {parts[i]: names(parts[i + 1]) for i in range(1, len(parts), 2)}
    from seqcli.api import API_VERSION

    assert API_VERSION in documented and len(documented) >= 5
    assert {v: documented[v] for v in documented if v != "1.0"} == told
