"""train.compile: a step-by-step cell's `step` through torch.compile, computing what the
cell computes; a compiler that cannot work is one line, a cell's own error stays its own."""

import copy
import json
import shutil
import weakref

import pytest
import torch

from seqcli import registry
from seqcli.api import Cell, CellSpec
from seqcli.errors import ConfigError
from seqcli.nn import recurrent
from seqcli.nn.recurrent import CompiledStep, Recurrent, compile_steps
from tests.conftest import TINY

needs_compiler = pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")),
                                    reason="torch.compile on a CPU needs a C++ compiler")


def plugin_lstm():
    """The built-in LSTM's equations as a plugin cell would run them: step by step."""
    return type("PluginLSTM", (registry.load("cell", "lstm"),), {"fused_kernel": classmethod(lambda c, **o: None)})


def run(model, x, lengths):
    model.zero_grad()
    out, state = model(x, lengths=lengths)
    (out.square().sum() + state[1].sum()).backward()
    return [out, *state, *(p.grad.clone() for p in model.parameters())]


@needs_compiler
def test_compiled_steps_compute_what_the_cells_compute():
    torch.manual_seed(0)
    eager = Recurrent(CellSpec(plugin_lstm()), 6, 8, num_layers=2, bidirectional=True)
    compiled = copy.deepcopy(eager)
    assert compile_steps(compiled) == 4
    assert compile_steps(Recurrent(CellSpec(registry.load("cell", "lstm")), 6, 8)) == 0  # fused: left alone
    for batch in (5, 3, 5):  # another batch size, then the first again
        x = torch.randn(7, batch, 6)
        lengths = torch.randint(1, 8, (batch,))
        lengths[0] = 7
        for a, b in zip(run(eager, x, lengths), run(compiled, x, lengths)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    # the one-step path (decoders, sampling) too, in evaluation mode
    single = Recurrent(CellSpec(plugin_lstm()), 6, 8, num_layers=2)
    twin = copy.deepcopy(single)
    compile_steps(twin)
    with torch.no_grad():
        x, state = torch.randn(4, 6), single.initial_state(4, torch.zeros(1))
        for a, b in zip(single.eval().step(x, state), twin.eval().step(x, state)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_a_copy_compiles_its_own_cells():
    """The compiled steps are kept per cell class, the cell passed in: a deep copy of a model
    (EMA, averaging) steps with its own weights, never the original's."""
    model = Recurrent(CellSpec(plugin_lstm()), 3, 4)
    compile_steps(model)
    twin = copy.deepcopy(model)
    assert twin.compiled and twin.stepper(0).args == (twin.cells[0],)
    assert twin.stepper(0).func is model.stepper(0).func  # one compiled step for the class


def test_a_compiler_that_cannot_work_is_one_line(cli, corpus, monkeypatch):
    def broken(fn, **options):
        def call(*args, **kwargs):
            raise RuntimeError("InductorError: no working C++ compiler found\nmore lines")
        return call

    monkeypatch.setattr(recurrent, "_COMPILED", weakref.WeakKeyDictionary())
    monkeypatch.setattr(torch, "compile", broken)
    result = cli("run", "char-lm", f"dataset.path={corpus}", *TINY, "model.cell.name=mingru",
                 "model.cell.parallel=never", "train.compile=true", "train.max_steps=5", "--run-dir", "r", ok=False)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.compile" in lines[0] and "MinGRU.step" in lines[0], result.stderr
    assert "no working C++ compiler found" in lines[0] and "train.compile=false" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_cells_own_error_stays_its_own(monkeypatch):
    class Broken(Cell):
        num_states = 1

        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.lin = torch.nn.Linear(input_size, hidden_size)

        def project(self, x):
            return self.lin(x)

        def step(self, u, state):
            raise ValueError("Broken.step: this cell's own bug")

    monkeypatch.setattr(torch, "compile", lambda fn, **o: lambda *a: fn(*a))
    with pytest.raises(ValueError, match="this cell's own bug"):
        CompiledStep(Broken)(Broken(2, 3), torch.zeros(1, 3), (torch.zeros(1, 3),))

    def compiler_fails(fn, **options):
        def call(*args):
            raise RuntimeError("the compiler failed")
        return call

    monkeypatch.setattr(torch, "compile", compiler_fails)
    cell = plugin_lstm()(2, 3)
    with pytest.raises(ConfigError, match="cannot compile PluginLSTM.step here"):
        CompiledStep(type(cell))(cell, torch.zeros(1, 12), (torch.zeros(1, 3), torch.zeros(1, 3)))


@needs_compiler
def test_a_compiled_run_learns_as_the_eager_one(cli, corpus, tmp_path):
    losses = {}
    for compiled in ("false", "true"):
        run = tmp_path / compiled
        result = cli("run", "char-lm", f"dataset.path={corpus}", *TINY, "model.cell.name=mingru",
                     "model.cell.parallel=never", f"train.compile={compiled}", "train.max_steps=120",
                     "train.eval_every=120", "train.optimizer.lr=0.01", "--run-dir", run)
        if compiled == "true":
            assert "train.compile: 1 step-by-step cells run their step through torch.compile" in result.stdout
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses[compiled] = [r for r in records if r.get("split") == "valid"][-1]["loss"]
    assert losses["true"] < 1.0  # it learns (a uniform guess over its 26 letters is 3.26)
    assert abs(losses["true"] - losses["false"]) < 1e-3, losses
    result = cli("run", "char-lm", f"dataset.path={corpus}", *TINY, "train.compile=true", "train.max_steps=2",
                 "--run-dir", tmp_path / "fused")
    assert "train.compile: nothing to compile (every cell runs on a fused kernel)" in result.stdout
