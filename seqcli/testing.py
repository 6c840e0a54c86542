"""Contract kits for plugin authors, in the spirit of scikit-learn's check_estimator.

    from seqcli.testing import check_cell, check_dataset, check_task, cli
    check_cell(MyCell)                      # raises AssertionError naming the failed check
    check_cell(MyCell, {"option": 3})       # with recipe options
    check_dataset(MyData, {"size": 200})    # splits, fields that survive a checkpoint, determinism
    check_task(MyTask, data, sample={"inputs": ["abc"]})   # trains, evaluates, shards, samples
    check_export("runs/mine", inputs=["abc"])               # seqcli export, and its runner agrees
    cli("run", "my-recipe", "train.max_steps=20")          # the command line, in-process

Every built-in cell, dataset and task passes these (tests/test_contracts.py).
"""


from __future__ import annotations

__all__ = ["Report", "check_cell", "check_dataset", "check_export", "check_task", "cli"]

import io

import torch

from seqcli.api import INPUTS, Cell, CellSpec
from seqcli.layers import Recurrent

T, B, I, H = 6, 3, 5, 7


def _close(a, b, what: str, name: str, atol: float = 1e-5) -> None:
    if not torch.allclose(a, b, atol=atol, rtol=1e-4):
        raise AssertionError(f"check_cell({name}): {what} (largest difference {(a - b).abs().max().item():.3g})")


def check_cell(cls: type, options: dict | None = None, export: bool = True) -> list[str]:
    """Check a Cell class against the contract; returns the names of the checks it passed.

    With `export` (the default), a stack of the cell is also traced as `seqcli export`
    traces it (`seqcli.layers.traceable`, then `torch.export`, the time and batch axes
    dynamic, with lengths, both directions), so a cell that cannot be exported fails here,
    in its own tests, not when a user exports a model."""
    options = dict(options or {})
    name = getattr(cls, "__name__", str(cls))
    passed = []

    def ok(check: str) -> None:
        passed.append(check)

    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        raise AssertionError(f"check_cell({name}): must be a subclass of seqcli.api.Cell")
    torch.manual_seed(0)
    cell = cls(I, H, **options)
    x = torch.randn(T, B, I)
    u = cell.project(x)
    if u.dim() != 3 or u.shape[:2] != (T, B):
        raise AssertionError(f"check_cell({name}): project() must map (T, B, input_size) to (T, B, G), got {tuple(u.shape)}")
    state = tuple(torch.zeros(B, H) for _ in range(cls.num_states))
    new = cell.step(u[0], state)
    if not isinstance(new, tuple) or len(new) != cls.num_states or any(s.shape != (B, H) for s in new):
        raise AssertionError(f"check_cell({name}): step() must return a tuple of num_states={cls.num_states} "
                             f"tensors of shape (batch, hidden_size)")
    ok("shapes")

    # the framework's generic path: the cell as a plugin runs, never a fused kernel
    plugin = type(f"{name}AsPlugin", (cls,), {"fused_kernel": classmethod(lambda c, **o: None)})
    torch.manual_seed(0)
    layer = Recurrent(CellSpec(plugin, options), I, H, num_layers=2, bidirectional=True).eval()
    out, final = layer(x)
    if out.shape != (T, B, 2 * H) or any(s.shape != (4, B, H) for s in final):
        raise AssertionError(f"check_cell({name}): a stacked bidirectional layer gave outputs {tuple(out.shape)}")
    ok("stacking and bidirection")

    for b in range(B):
        alone, _ = layer(x[:, b : b + 1])
        _close(alone[:, 0], out[:, b], "an example's outputs depend on the other examples in its batch", name)
    ok("batch independence")

    lengths = torch.tensor([T, 2, 4])
    padded, padded_final = layer(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_final = layer(x[:n, b : b + 1])
        _close(alone[:, 0], padded[:n, b], "padding changes the outputs of real steps", name)
        if padded[n:, b].abs().sum() > 0:
            raise AssertionError(f"check_cell({name}): outputs at padded steps must be zero")
        for s_alone, s_padded in zip(alone_final, padded_final):
            _close(s_alone[:, 0], s_padded[:, b], "padding changes the final state", name)
    ok("masking")

    forward = Recurrent(CellSpec(plugin, options), I, H, num_layers=2).eval()
    seq, seq_final = forward(x)
    state = forward.initial_state(B, x)
    for t in range(T):
        h, state = forward.step(x[t], state)
        _close(h, seq[t], f"step-by-step output at step {t} differs from the whole-sequence run", name)
    for a, b in zip(state, seq_final):
        _close(a, b, "the state carried step by step differs from the whole-sequence final state", name)
    half, half_state = forward(x[: T // 2])
    rest, _ = forward(x[T // 2 :], half_state)
    _close(torch.cat([half, rest]), seq, "a sequence run in two halves, carrying the state, differs", name)
    ok("state handling")

    if cls.scan is not Cell.scan:  # a parallel training path must agree with the step loop
        class Stepped(plugin):
            def scan(self, u, state, mask):
                return NotImplemented

        torch.manual_seed(0)
        stepped = Recurrent(CellSpec(Stepped, options), I, H, num_layers=2, bidirectional=True).eval()
        stepped.load_state_dict(layer.state_dict())
        _close(stepped(x, lengths=lengths)[0], padded, "scan() and the step loop disagree", name)
        ok("scan matches steps")

    layer.train()
    layer.zero_grad()
    layer(x)[0].pow(2).sum().backward()
    for pname, p in layer.named_parameters():
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0:
            raise AssertionError(f"check_cell({name}): no finite, non-zero gradient reaches parameter {pname}")
    layer.eval()
    ok("gradient flow")

    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    restored = Recurrent(CellSpec(plugin, options), I, H, num_layers=2, bidirectional=True).eval()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    _close(restored(x)[0], out, "a model restored from its state_dict gives different outputs", name)
    ok("serialisation")

    kernel = cls.fused_kernel(**options)
    if kernel is not None:
        fused = Recurrent(CellSpec(cls, options), I, H, num_layers=2, bidirectional=True).eval()
        with torch.no_grad():
            for index, c in enumerate(layer.cells):
                layer_no, direction = divmod(index, 2)
                for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(fused.fused, f"{p}_l{layer_no}{'_reverse' if direction else ''}").copy_(getattr(c, p))
        _close(fused(x, lengths=lengths)[0], padded, f"the fused '{kernel}' kernel and step() disagree", name)
        ok("fused kernel matches steps")

    if export:
        _check_export(layer, name)
        ok("exports")
    return passed


class _Outputs(torch.nn.Module):
    """A stack's outputs for padded sequences: the graph `seqcli export` makes of it."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, lengths):
        return self.rnn(x, lengths=lengths)[0]


def _check_export(layer, name: str) -> None:
    """The stack (2 layers, both directions) through `seqcli.layers.traceable` and
    `torch.export`, with the time and batch axes dynamic; the program run at another length
    and batch size gives the layer's outputs."""
    from seqcli.layers import traceable

    x, lengths = torch.randn(T, B, I), torch.tensor([T, 2, 4])
    time, batch = torch.export.Dim("time", min=1), torch.export.Dim("batch", min=1)
    try:
        with torch.no_grad():
            program = torch.export.export(_Outputs(traceable(layer)), (x, lengths),
                                          dynamic_shapes=({0: time, 1: batch}, {0: batch}))
    except Exception as exc:  # noqa: BLE001 - any tracer failure is the finding
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        text = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else ""
        raise AssertionError(f"check_cell({name}): torch.export cannot trace its step through seqcli.layers.traceable, "
                             f"so seqcli export cannot export a model made with it ({type(cause).__name__}: {text})") \
            from exc
    other = torch.randn(T + 3, B + 2, I)
    other_lengths = torch.tensor([T + 3, 1, 5, T + 3, 2])
    with torch.no_grad():
        _close(program.module()(other, other_lengths), layer(other, lengths=other_lengths)[0],
               "its exported graph, run at another length and batch size, differs from the layer", name, atol=1e-4)


# -- datasets and tasks -----------------------------------------------------------------------

def _roundtrip(value):
    """`value` through torch.save / torch.load(weights_only=True), as checkpoints carry it."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_dataset(cls: type, options: dict | None = None) -> list[str]:
    """Check a Dataset class: it loads 'train' and 'valid' splits that are not empty, its
    fields survive a checkpoint (plain data through `torch.load(weights_only=True)`), its info
    is plain data, and loading twice gives the same splits and fields. Returns the checks
    passed; raises AssertionError naming the one that failed."""
    import json

    from seqcli.api import Data, Dataset
    from seqcli.schema import construct
    from seqcli.vocab import field_from_state, field_to_state

    name = getattr(cls, "__name__", str(cls))
    passed = []
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        raise AssertionError(f"check_dataset({name}): must be a subclass of seqcli.api.Dataset")
    data = construct(cls, dict(options or {})).load()
    if not isinstance(data, Data):
        raise AssertionError(f"check_dataset({name}): load() must return seqcli.api.Data, got {type(data).__name__}")
    for split in ("train", "valid"):
        if split not in data.splits:
            raise AssertionError(f"check_dataset({name}): no '{split}' split (it has: {', '.join(data.splits)})")
        if len(data.splits[split]) == 0:
            raise AssertionError(f"check_dataset({name}): the '{split}' split is empty")
    passed.append("splits")
    for key, value in data.fields.items():
        back = field_from_state(_roundtrip(field_to_state(value)))
        if back != value:
            raise AssertionError(f"check_dataset({name}): field '{key}' changes when stored in a checkpoint "
                                 f"(give it to_state/from_state, or keep it plain data)")
    passed.append("fields serialisable")
    try:
        json.dumps(data.info)
    except TypeError as exc:
        raise AssertionError(f"check_dataset({name}): info must be plain data ({exc})") from None
    passed.append("info is plain data")
    again = construct(cls, dict(options or {})).load()
    if again.fields != data.fields or not _same(again.splits, data.splits):
        raise AssertionError(f"check_dataset({name}): loading twice gives different splits or fields")
    passed.append("deterministic")
    return passed


COUNTS = ("examples", "tokens")  # what evaluate reports besides metrics: how much it scored


def _minor(version) -> tuple[int, int]:
    try:
        major, minor = (int(p) for p in str(version).split(".")[:2])
    except ValueError:
        return (0, 0)
    return major, minor


class Report(list):
    """The checks passed, with the trained `model` and its last validation `metrics`."""

    model = None
    metrics: dict = {}


def check_task(cls: type | str, data, options: dict | None = None, model: dict | None = None, cell: str = "gru",
               sample: dict | None = None, steps: int = 30, batch_size: int = 16, lr: float = 0.01) -> list[str]:
    """Check a Task class on `data` (a `seqcli.api.Data`): it builds a model, trains `steps`
    steps with seqcli's own training step and lowers the validation loss; `evaluate` gives
    'loss' and the main metric, honours eval_batches, and (for example lists) does not
    depend on how examples are batched; `shard` covers a batch exactly once; `sample` runs
    with `sample` options and gives one line per input; the weights survive a checkpoint.
    `cls` may be a registered name ('classify'), to check a dataset against a built-in task.
    Returns a `Report`: the checks passed, with `.model` (trained) and `.metrics` (after
    training); raises AssertionError naming the check that failed."""
    from seqcli import registry
    from seqcli.api import API_VERSION, CellSpec, Task, TrainConfig
    from seqcli.inference import as_samples
    from seqcli.schema import construct
    from seqcli.train import loop
    from seqcli.train.stepper import Stepper, evaluate

    if isinstance(cls, str):
        cls = registry.load("task", cls)
    name = getattr(cls, "__name__", str(cls))
    passed = Report()
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise AssertionError(f"check_task({name}): must be a subclass of seqcli.api.Task")
    task = construct(cls, dict(options or {}))
    torch.manual_seed(0)
    spec = CellSpec(registry.load("cell", cell))
    net = construct(task.build_model, {"data": data, "cell": spec, **(model or {})})
    if not isinstance(net, torch.nn.Module) or not list(net.parameters()):
        raise AssertionError(f"check_task({name}): build_model() must return a torch.nn.Module with parameters")
    passed.append("builds a model")
    config = TrainConfig(batch_size=batch_size, optimizer={"name": "adam", "lr": lr}, clip_grad_norm=5.0)

    def score(cfg=config):
        metrics = evaluate(task, net, data, "valid", cfg)
        for key in ("loss", task.main_metric):
            if key not in metrics:
                raise AssertionError(f"check_task({name}): evaluate() must report '{key}' (it gave {sorted(metrics)})")
        return metrics

    before = score()
    passed.append("evaluate")
    if _minor(getattr(cls, "api_version", API_VERSION)) >= (1, 4):  # seqcli's own tasks state none
        undirected = [k for k, v in before.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                      and k not in COUNTS and cls.direction(k) is None]
        if undirected:
            raise AssertionError(f"check_task({name}): evaluate() reports {', '.join(undirected)} without a direction: "
                                 f"declare directions = {{metric: HIGHER or LOWER}} (seqcli.api, API 1.4)")
        passed.append("every metric has a direction")
    valid = data.splits["valid"]
    if isinstance(valid, list) and len(valid) > 2:
        one_by_one = score(TrainConfig(batch_size=1))["loss"]
        together = score(TrainConfig(batch_size=len(valid)))["loss"]
        if abs(one_by_one - together) > 1e-4 * max(1.0, abs(together)):
            raise AssertionError(f"check_task({name}): the validation loss depends on how examples are batched "
                                 f"({one_by_one:.6f} one at a time, {together:.6f} all together): mask the padding")
        capped = evaluate(task, net, data, "valid", TrainConfig(batch_size=1, eval_batches=1), capped=True)["loss"]
        first = valid[:1]
        alone = evaluate(task, net, type(data)(splits={"valid": first}, fields=data.fields), "valid",
                         TrainConfig(batch_size=1))["loss"]
        if abs(capped - alone) > 1e-5 * max(1.0, abs(alone)):
            raise AssertionError(f"check_task({name}): evaluate() must honour config.eval_batches")
        passed.append("batching independence and eval_batches")
    batch = next(iter(task.batches(data, config, 0)))
    if isinstance(batch, list) and len(batch) >= 3:
        for world in (2, 3):
            parts = [task.shard(batch, rank, world) for rank in range(world)]
            seen = [id(example) for part in parts for example in part]
            if any(not part for part in parts) or sorted(seen) != sorted(id(e) for e in batch):
                raise AssertionError(f"check_task({name}): shard() over {world} processes must cover the batch "
                                     f"exactly once")
        passed.append("shard covers a batch once")
    stepper = Stepper(task, net, config)
    carry = None
    for done, step in enumerate(loop.steps(task, data, config), 1):  # seqcli's own loop, one batch a step
        result = stepper.forward(step.batches[0], carry)
        stepper.update(result)
        carry = result.carry
        if done >= steps:
            break
    after = score()
    if not after["loss"] < before["loss"]:
        raise AssertionError(f"check_task({name}): {steps} training steps did not lower the validation loss "
                             f"({before['loss']:.4f} -> {after['loss']:.4f})")
    passed.append("training lowers the loss")
    if sample is not None:
        net.eval()
        with torch.no_grad():
            out = as_samples(task.sample(net, data.fields, **sample))
        if INPUTS in sample and len(out.lines) != len(sample[INPUTS]):
            raise AssertionError(f"check_task({name}): sample() gave {len(out.lines)} lines for "
                                 f"{len(sample[INPUTS])} inputs")
        passed.append("sample")
    state = _roundtrip(net.state_dict())
    torch.manual_seed(1)
    rebuilt = construct(task.build_model, {"data": data, "cell": spec, **(model or {})})
    rebuilt.load_state_dict(state)
    if abs(evaluate(task, rebuilt, data, "valid", config)["loss"] - after["loss"]) > 1e-5:
        raise AssertionError(f"check_task({name}): a model restored from its state_dict scores differently")
    passed.append("serialisation")
    passed.model, passed.metrics = net.eval(), after
    return passed


def check_export(run, inputs: list[str] | None = None, options: dict | None = None, fmt: str = "onnx",
                 tolerance: float = 1e-4) -> list[str]:
    """Export a trained run (a run directory or checkpoint) with `seqcli export` and check
    the export: every graph passes onnx's checker and matches the model on its example (the
    export itself checks both); the reference runner loads the folder and gives one line per
    input of `inputs` (a language model: continues each as a prime, greedily); and its lines
    are seqcli's own (`seqcli.load(run).predictions`/`.sample`, with `options`), the numbers in
    them within `tolerance`, and so are their typed hypotheses (each output, its score within
    `tolerance`). Needs `pip install 'seqcli[export]'`. Returns the checks passed;
    raises AssertionError naming the check that failed."""
    import importlib.util
    import re
    import tempfile
    from pathlib import Path

    from seqcli import export, inference

    passed = []
    options = dict(options or {})
    with tempfile.TemporaryDirectory() as tmp:
        folder = export.export(run, Path(tmp) / "export", fmt, test=False)
        passed.append("exports, every graph checked")
        spec = importlib.util.spec_from_file_location("seqcli_export_runner", folder / "run.py")
        runner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(runner)
        model = runner.Model(folder)
        passed.append("the runner loads it")
        loaded = inference.load(run)
        import inspect

        taken = inspect.signature(getattr(model, runner.RUNS[model.kind])).parameters
        theirs_options = {k: v for k, v in options.items() if k in taken}  # a task's own options stay seqcli's
        if model.kind == "generator":
            primes = list(inputs or [""])
            theirs = [model.sample(prime=p, temperature=0.0, **theirs_options)[0] for p in primes]
            ours = [loaded.sample(prime=p, temperature=0.0, **options).lines[0] for p in primes]
        else:
            if not inputs:
                raise AssertionError("check_export: give inputs for a model that takes them")
            typed = model.predictions(list(inputs), **theirs_options), loaded.predictions(list(inputs), **options)
            theirs, ours = [p["text"] for p in typed[0]], [p.text for p in typed[1]]
        if len(theirs) != len(ours):
            raise AssertionError(f"check_export: the runner gave {len(theirs)} lines for {len(ours)} of seqcli's")
        number = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
        for i, (a, b) in enumerate(zip(theirs, ours)):
            x, y = number.findall(a), number.findall(b)
            same_words = number.sub("#", a).split() == number.sub("#", b).split()
            if model.kind == "values":  # the runner prints the numbers alone, seqcli as the task formats them
                y, same_words = y[:len(x)], True
            close = len(x) == len(y) and all(abs(float(p) - float(q)) <= tolerance * max(1.0, abs(float(q)))
                                             + 0.5 * 10.0 ** -_decimals(q) for p, q in zip(x, y))
            if not (close and same_words):
                raise AssertionError(f"check_export: output {i + 1} differs: the runner gave {a!r}, seqcli {b!r}")
        if model.kind not in ("generator", "values"):  # typed alike: each hypothesis's output, its score close
            for i, (a, b) in enumerate(zip(*typed)):
                outputs = [h["output"] for h in a["hypotheses"]], [h.output for h in b.hypotheses]
                scores = [h["score"] for h in a["hypotheses"]], [h.score for h in b.hypotheses]
                if outputs[0] != outputs[1] or [s is None for s in scores[0]] != [s is None for s in scores[1]] or any(
                        abs(p - q) > tolerance * max(1.0, abs(q)) for p, q in zip(*scores) if q is not None):
                    raise AssertionError(f"check_export: output {i + 1}'s hypotheses differ: the runner gave "
                                         f"{a['hypotheses']}, seqcli {[vars(h) for h in b.hypotheses]}")
        passed.append("the runner's outputs are seqcli's")
    return passed


def _decimals(text: str) -> int:
    """The decimals a printed number shows (what it was rounded to)."""
    mantissa = text.split("e")[0]
    return len(mantissa.partition(".")[2]) if "e" not in text else 6


def cli(*args, ok: bool = True):
    """Run `seqcli ARGS...` in this process (as a plugin's own tests use it); returns Click's
    Result with `.exit_code`, `.stdout` and `.stderr`. With `ok`, a non-zero exit raises
    AssertionError showing both streams. Each call starts from the state the process had:
    what a call changes (`--no-plugins`, `--disable-plugin`, `--threads`, `--debug`) does not
    reach the next one."""
    import os

    import torch
    from typer.testing import CliRunner

    from seqcli import registry
    from seqcli.cli import app
    from seqcli.cli.common import state

    environ, threads, kept = dict(os.environ), torch.get_num_threads(), dict(state)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)
            registry.forget()  # plugins found under the call's switches are looked up again
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        state.clear()
        state.update(kept)
    if ok and result.exit_code != 0:
        raise AssertionError(f"seqcli {' '.join(map(str, args))}: exit {result.exit_code}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}")
    return result
