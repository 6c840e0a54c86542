"""The structure the documentation's design page states is the structure of the code: the
layer order (read from docs/design.md itself), no import cycle anywhere, one owner per fact."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "seqcli"


def modules() -> dict[str, Path]:
    """Every module of seqcli by dotted name (a package by its own name)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path, name: str, known: dict) -> set[str]:
    """The seqcli modules a file imports, anywhere in it (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.startswith("seqcli") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, name, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def top(name: str) -> str:
    """The top-level part of seqcli a module belongs to: `seqcli.nn.init` -> `nn`."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "seqcli"


def stated_layers() -> list[list[str]]:
    """The layer block of the design page: one layer per line, bottom first."""
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    block = re.search(r"Layers, bottom to top.*?```text\n(.*?)```", design, re.S)
    assert block, "docs/design.md has no layer block"
    # names are two spaces apart; a note follows after a wider gap
    return [re.split(r"\s{3,}", line.strip())[0].split() for line in block.group(1).splitlines() if line.strip()]


def test_no_import_cycle_anywhere_in_seqcli():
    edges = graph()
    assert cycles(edges) == []
    packages: dict[str, set[str]] = {}
    for source, targets in edges.items():
        for target in targets:
            if top(source) != top(target) and "seqcli" not in (top(source), top(target)):
                packages.setdefault(top(source), set()).add(top(target))
    assert cycles(packages) == [], "the top-level packages import each other"


def test_nothing_imports_upward_of_the_order_the_readme_states():
    layers = stated_layers()
    level = {name: i for i, line in enumerate(layers) for name in line}
    present = {top(name) for name in modules()} - {"seqcli", "__main__", "templates"}
    assert present == set(level), (f"the design page's layers and the code differ: not in the page "
                                   f"{sorted(present - set(level))}, not in the code {sorted(set(level) - present)}")
    upward = sorted(f"{source} imports {target}" for source, targets in graph().items() for target in targets
                    if top(source) in level and top(target) in level and level[top(target)] > level[top(source)])
    assert upward == []


def test_the_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    known = {"seqcli.api": tmp_path / "api.py", "seqcli.cli": tmp_path / "cli.py"}
    known["seqcli.api"].write_text("def f():\n    from seqcli.cli import app\n")
    assert imports(known["seqcli.api"], "seqcli.api", known) == {"seqcli.cli"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def spelled_outside(literals: set[str], owners: set[str]) -> list[str]:
    """Where a string literal from `literals` appears in a module other than `owners`."""
    found = []
    for name, path in modules().items():
        if name in owners:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in literals:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_the_run_folder_has_one_owner():
    """A run folder's file names are spelled in seqcli/runfolder.py alone."""
    from seqcli import runfolder

    names = {runfolder.RECIPE, runfolder.METRICS, runfolder.SAMPLES, runfolder.CHECKPOINTS, runfolder.MLFLOW,
             "best.pt", "last.pt"}
    assert spelled_outside(names, {"seqcli.runfolder"}) == []


def test_optimizers_schedulers_and_init_schemes_are_named_only_where_they_are_defined():
    """No name switch outside the owner: a scheme's name is the key of its table, nowhere else
    (names that are also ordinary words, like 'step' and 'default', are left out of the check)."""
    from seqcli import optim
    from seqcli.nn import init

    names = (set(optim.OPTIMIZERS) | set(optim.SCHEDULERS) | set(init.INITS)) - {"step", "default", "uniform"}
    assert len(names) >= 8
    # TrainConfig's default optimizer, and the kits' own small training, are the uses elsewhere
    assert spelled_outside(names, {"seqcli.optim", "seqcli.nn.init", "seqcli.config", "seqcli.testing"}) == []


def test_no_feature_probes_in_the_tasks_and_the_trainer():
    """What a task or the trainer needs of seqcli's own objects is declared (an attribute every
    such object has, a protocol such as `optim.Averaging`), never probed for with hasattr or a
    getattr default."""
    import ast

    probed = []
    for path in sorted((ROOT / "seqcli" / "tasks").glob("*.py")) + [ROOT / "seqcli" / "train" / "trainer.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                    node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) == 3)):
                probed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert probed == []
