"""`seqcli plugins new KIND NAME`: a plugin package whose own tests pass on first run."""

from __future__ import annotations

import os
import re
import tempfile
from importlib import resources
from pathlib import Path

from seqcli.errors import SeqcliError
from seqcli.registry import GROUPS

TESTS = {
    "cell": '''from seqcli.testing import check_cell


def test_passes_the_seqcli_cell_contract():
    check_cell({cls})
    check_cell({cls}, {"scale": 0.5})
''',
    "dataset": '''from seqcli.testing import check_dataset, check_task


def test_passes_the_seqcli_dataset_contract():
    assert "fields serialisable" in check_dataset({cls}, {"size": 200})
    data = {cls}(size=100).load()
    assert len(data.splits["train"]) == 80 and len(data.splits["valid"]) == 20
    assert set(data.fields) == {"input", "label"}


def test_a_classifier_learns_it():
    data = {cls}(size=2000, max_length=3).load()
    report = check_task("classify", data, model={"embedding_size": 8, "hidden_size": 32}, cell="lstm",
                        steps=250, batch_size=32, lr=0.02)
    assert report.metrics["accuracy"] > 0.9, report.metrics
''',
    "task": '''from seqcli.api import Data, Labels, Vocab
from seqcli.testing import check_task


def test_passes_the_task_contract_and_learns_to_label_by_the_first_token():
    vocab, labels = Vocab(["<unk>", "a", "b", "c"], "char"), Labels(["starts-a", "other"])
    g = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(400):
        x = torch.randint(1, 4, (int(torch.randint(1, 6, (1,), generator=g)),), generator=g)
        examples.append({"input": x, "label": torch.tensor(0 if x[0] == 1 else 1)})
    data = Data(splits={"train": examples[:320], "valid": examples[320:]}, fields={"input": vocab, "label": labels})
    report = check_task({cls}, data, sample={"inputs": ["abc", "bca"]}, steps=100, batch_size=32, lr=0.02)
    assert report.metrics["accuracy"] > 0.9, report.metrics
    assert {cls}().sample(report.model, data.fields, ["abc", "bca"]) == ["starts-a", "other"]
''',
}

PYPROJECT = '''[build-system]
requires = ["hatchling>=1.18"]
build-backend = "hatchling.build"

[project]
name = "seqcli-{name}"
version = "0.1.0"
description = "A seqcli {kind} plugin"
requires-python = ">=3.10"
dependencies = ["seqcli>={seqcli_version}"]

[project.entry-points."{group}"]
{name} = "seqcli_{name}:{cls}"

[tool.hatch.build.targets.wheel]
packages = ["src/seqcli_{name}"]
'''

README = '''# seqcli-{name}

A seqcli {kind} plugin.

```bash
pip install -e .                # seqcli finds it: seqcli plugins list
python -m pytest                # its own tests
```

Use it in a recipe by its name: {usage}
'''

USAGE = {"cell": "`model: {cell: {name: {name}, scale: 1.0}, ...}`",
         "dataset": "`dataset: {name: {name}, size: 2000}` with `task: {name: classify}`",
         "task": "`task: {name: {name}}` with a dataset that has `input` and `label` fields"}


def new_plugin(kind: str, name: str, folder: str = ".") -> Path:
    if kind not in GROUPS:
        raise SeqcliError(f"unknown plugin kind '{kind}'; choose one of: {', '.join(GROUPS)}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SeqcliError(f"plugin name '{name}': use lower-case letters, digits and underscores, starting with a letter")
    from seqcli import registry

    own = [p for p in registry.find(kind).get(name, []) if p.package == registry.OWN]
    if own:
        raise SeqcliError(f"'{name}' is the name of seqcli's own {kind}; a plugin of that name could only be "
                          f"used as 'seqcli-{name}:{name}'. Choose another name")
    installed = _installed(name)
    if installed:
        raise SeqcliError(f"plugin name '{name}': {installed} is installed already, and a new package of that name "
                          f"would replace it when installed; choose another name (nothing was changed)")
    root = Path(folder) / f"seqcli-{name}"
    if root.exists():
        raise SeqcliError(f"{root} already exists; choose another name or folder (nothing was changed)")
    cls = "".join(part.capitalize() for part in name.split("_"))
    from seqcli import __version__
    from seqcli.api import API_VERSION

    values = {"name": name, "cls": cls, "kind": kind, "group": GROUPS[kind], "api_version": API_VERSION,
              "seqcli_version": ".".join(__version__.split(".")[:2])}

    def fill(text: str, **more) -> str:
        for key, value in {**values, **more}.items():
            text = text.replace("{" + key + "}", value)
        return text

    templates = resources.files("seqcli.templates")
    files = {
        Path("src") / f"seqcli_{name}" / "__init__.py": fill(templates.joinpath(f"{kind}.py.txt").read_text(encoding="utf-8")),
        Path("tests") / f"test_{name}.py": fill(templates.joinpath("test.py.txt").read_text(encoding="utf-8"),
                                                 test_body=fill(TESTS[kind])),
        Path("pyproject.toml"): fill(PYPROJECT),
        Path("README.md"): fill(README, usage=fill(USAGE[kind])),
    }
    staging = Path(tempfile.mkdtemp(prefix=f".seqcli-{name}-", dir=folder))
    for path, text in files.items():
        (staging / path).parent.mkdir(parents=True, exist_ok=True)
        (staging / path).write_text(text, encoding="utf-8")
    os.replace(staging, root)  # all of it or nothing
    return root


def _installed(name: str) -> str | None:
    """What is installed under the names a new plugin `name` would take: its distribution
    (seqcli-NAME) or its import package (seqcli_NAME), described; None when neither is."""
    import importlib.metadata
    import importlib.util

    try:
        found = importlib.metadata.distribution(f"seqcli-{name}")
        return f"the package seqcli-{name} {found.version}"
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        spec = importlib.util.find_spec(f"seqcli_{name}")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        where = spec.origin or (list(spec.submodule_search_locations or []) or ["?"])[0]
        return f"a module seqcli_{name} ({where})"
    return None
