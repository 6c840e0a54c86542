"""Property tests: randomly broken recipes, data files and options never show a traceback
and never touch an existing run's checkpoints."""

import copy
import hashlib
import math
import random
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_corpus

BASE = {
    "dataset": {"name": "text", "path": "corpus.txt", "level": "char"},
    "task": {"name": "language_model"},
    "model": {"cell": {"name": "lstm"}, "embedding_size": 8, "hidden_size": 8, "num_layers": 1},
    "train": {"batch_size": 4, "seq_len": 8, "max_steps": 3, "eval_every": 3, "log_every": 1,
              "optimizer": {"name": "adam", "lr": 0.01}},
    "sample": {"length": 5, "prime": "the "},
}

values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 40), st.floats(-10, 10),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300]),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2),
    st.sampled_from(["lstm", "gru", "rnn", "word", "char", "sgd", "plateau", "classify", "pairs", "cuda", "auto"]),
)


def paths(tree, prefix=()):
    for key, value in tree.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from paths(value, prefix + (key,))


@st.composite
def broken_recipes(draw):
    recipe = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(paths(recipe))))
        parent = recipe
        for key in where[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            parent.pop(where[-1], None)
        elif action == "add":
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        else:
            parent[where[-1]] = draw(values)
    return recipe


@pytest.fixture
def guarded_run(tmp_path, cli):
    """A finished run whose files must survive everything the property tests do."""
    (tmp_path / "corpus.txt").write_text(make_corpus(200))
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    cli("run", tmp_path / "base.yaml", "--run-dir", tmp_path / "precious")
    files = sorted((tmp_path / "precious").rglob("*"))
    return lambda: {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def assert_clean(result):
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code:
        assert result.stderr.startswith("error: "), result.stderr


COUNT = {"recipes": 0, "data": 0, "options": 0}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(recipe=broken_recipes())
def test_broken_recipes(tmp_path, cli, guarded_run, recipe):
    before = guarded_run()
    COUNT["recipes"] += 1
    path = tmp_path / f"r{COUNT['recipes']}.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    for target in (f"runs/new{COUNT['recipes']}", "precious"):
        assert_clean(cli("run", path, "--run-dir", tmp_path / target, ok=False))
    assert guarded_run() == before


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(0, 4000), noise=st.lists(st.tuples(st.integers(0, 3999), st.integers(0, 255)), max_size=6),
       prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\x00", b"\xff\xfe", b"\n\n\n"]))
def test_broken_data_files(tmp_path, cli, guarded_run, cut, noise, prefix):
    before = guarded_run()
    COUNT["data"] += 1
    data = bytearray(make_corpus(200).encode()[:cut])
    for position, byte in noise:
        if position < len(data):
            data[position] = byte
    (tmp_path / "broken.txt").write_bytes(prefix + bytes(data))
    result = cli("run", tmp_path / "base.yaml", "dataset.path=broken.txt", "--run-dir",
                 tmp_path / f"runs/d{COUNT['data']}", ok=False)
    assert_clean(result)
    assert guarded_run() == before


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(options=st.lists(st.tuples(
    st.sampled_from(["--prime", "--length", "--temperature", "--top-k", "--top-p", "--num-samples", "--seed",
                     "--beam-size", "--input", "--checkpoint", "--device"]),
    st.one_of(st.integers(-5, 50).map(str), st.text(max_size=6), st.sampled_from(["nan", "inf", "1e9", "0", "last"]))),
    max_size=3))
def test_random_sample_options(tmp_path, cli, guarded_run, options):
    before = guarded_run()
    COUNT["options"] += 1
    args = [a for pair in options for a in pair]
    random.seed(0)
    result = cli("sample", tmp_path / "precious", *args, ok=False)
    if result.exit_code == 2 and "Usage:" in result.stderr:
        return  # typer's own message for a value of the wrong type: one clear usage error
    assert_clean(result)
    assert guarded_run() == before


FORMATS = {
    "pairs.tsv": ("reverse", "{name: pairs, path: data.tsv, source: 0, target: 1}"),
    "pairs.jsonl": ("reverse", "{name: pairs, path: data.jsonl}"),
    "labeled.csv": ("digits", "{name: labeled, path: data.csv, input: text, label: label}"),
    "labeled.jsonl": ("digits", "{name: labeled, path: data.jsonl, input_type: numbers}"),
    "conll.txt": ("copy-memory", "{name: conll, path: data.txt}"),
    "series.csv": ("seasonal", "{name: series, path: data.csv, window: 3, horizon: 1}"),
}
SEEDS = {
    "pairs.tsv": "abc\tcba\nhello\tolleh\n" * 20,
    "pairs.jsonl": '{"source": "abc", "target": "cba"}\n' * 30,
    "labeled.csv": "text,label\ngood film,pos\nbad film,neg\n" * 20,
    "labeled.jsonl": '{"input": [[1, 2], [3, 4]], "label": "a"}\n{"input": [[0, 1]], "label": "b"}\n' * 20,
    "conll.txt": "the DT\ncat NN\n\na DT\ndog NN\n\n" * 20,
    "series.csv": "t,v\n" + "".join(f"{i},{i % 7}\n" for i in range(80)),
}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(sorted(FORMATS)), cut=st.integers(0, 2000),
       edits=st.lists(st.tuples(st.integers(0, 1999), st.sampled_from(list(b'\t\n,;:{}[]" \x00\xff0a-'))), max_size=8))
def test_broken_files_in_every_format(tmp_path, cli, guarded_run, kind, cut, edits):
    before = guarded_run()
    COUNT["data"] += 1
    data = bytearray(SEEDS[kind].encode()[:cut])
    for position, byte in edits:
        if position < len(data):
            data[position] = byte
    suffix = kind.split(".")[1]
    (tmp_path / f"data.{suffix}").write_bytes(bytes(data))
    recipe, dataset = FORMATS[kind]
    if recipe == "digits":
        pytest.importorskip("sklearn")
    result = cli("run", recipe, f"dataset={dataset}", "train.max_steps=2", "train.eval_every=2", "train.batch_size=4",
                 "sample={}" if recipe in ("reverse",) else "train.log_every=1",
                 "--run-dir", tmp_path / f"runs/f{COUNT['data']}", ok=False)
    assert_clean(result)
    assert guarded_run() == before


COUNT.update(yaml=0, checkpoints=0, caches=0)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(levels=st.integers(1, 14), fanout=st.integers(1, 12), depth=st.integers(0, 700), recursive=st.booleans(),
       where=st.sampled_from(["file", "override"]))
def test_yaml_anchors_aliases_and_nesting(tmp_path, cli, levels, fanout, depth, recursive, where):
    import time

    COUNT["yaml"] += 1
    lines = ['a0: &a0 ["x"]'] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)]
    nested = "[" * depth + "]" * depth
    value = "&r {b: *r}" if recursive else nested
    started = time.perf_counter()
    if where == "file":
        path = tmp_path / f"y{COUNT['yaml']}.yaml"
        path.write_text("sample:\n" + "".join(f"  {line}\n" for line in lines) + f"  deep: {value}\n")
        result = cli("recipes", "validate", path, ok=False)
    else:
        result = cli("recipes", "validate", "char-lm", f"sample.deep={value}", ok=False)
    assert time.perf_counter() - started < 5
    assert_clean(result)
    assert result.exit_code == 2  # no recipe of this shape is valid: 'sample' takes no such keys


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix + (key,)
            yield from _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value[:3]):
            yield prefix + (i,)
            yield from _paths(inner, prefix + (i,))


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), reseal=st.booleans())
def test_random_mutations_of_a_checkpoint(tmp_path, cli, guarded_run, data, reseal):
    import torch

    from seqcli.train import checkpoint

    before = guarded_run()
    COUNT["checkpoints"] += 1
    obj = torch.load(tmp_path / "precious" / "checkpoints" / "best.pt", weights_only=True)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(_paths(obj))))
        parent = obj
        for key in where[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            parent.pop(where[-1], None)
        else:
            parent[where[-1]] = data.draw(st.one_of(values, st.just(torch.full((2,), float("nan")))))
    if reseal and isinstance(obj, dict):
        checkpoint.seal(obj)
    path = tmp_path / f"m{COUNT['checkpoints']}.pt"
    torch.save(obj, path)
    for command in ("sample", "evaluate"):
        assert_clean(cli(command, path, ok=False))
    assert guarded_run() == before


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=st.lists(st.tuples(st.sampled_from(["meta.json", "train.npy", "valid.npy", "test.npy"]),
                                st.integers(0, 3000), st.integers(0, 255)), min_size=1, max_size=5),
       truncate=st.one_of(st.none(), st.integers(0, 3000)))
def test_random_damage_to_cache_entries(tmp_path, edits, truncate):
    import torch

    from seqcli.data.datasets.text import TextDataset

    COUNT["caches"] += 1
    path = tmp_path / f"c{COUNT['caches']}.txt"
    path.write_text(make_corpus(60, seed=COUNT["caches"]))
    fresh = TextDataset(path=str(path)).load()
    for folder in [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]:
        for name, position, byte in edits:
            target = folder / name
            if target.exists():
                raw = bytearray(target.read_bytes())
                if position < len(raw):
                    raw[position] = byte
                target.write_bytes(bytes(raw[:truncate] if truncate is not None and name == "train.npy" else raw))
    again = TextDataset(path=str(path)).load()
    assert again.fields == fresh.fields
    assert all(torch.equal(again.splits[k], fresh.splits[k]) for k in fresh.splits)


# -- bulk --continue: whatever happened to the output, it continues exactly or refuses -----------

COUNT.update(continued=0, refused=0, sweeps=0)


@pytest.fixture(scope="module")
def reverser(tmp_path_factory):
    from typer.testing import CliRunner

    from seqcli.cli import app

    run = tmp_path_factory.mktemp("hostile-bulk") / "run"
    result = CliRunner().invoke(app, ["run", "reverse", "train.max_steps=40", "train.eval_every=40",
                                      "model.hidden_size=16", "dataset.train_size=400", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    return run


damage = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 400)),
    st.tuples(st.just("flip"), st.integers(0, 400), st.integers(0, 255)),
    st.tuples(st.just("append"), st.binary(max_size=30)),
    st.tuples(st.just("insert"), st.integers(0, 400), st.binary(min_size=1, max_size=5)),
    st.tuples(st.just("drop line"), st.integers(0, 40)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(groups=st.integers(0, 3), edits=st.lists(damage, max_size=3))
def test_random_damage_to_a_continued_output(tmp_path, cli, reverser, groups, edits):
    from seqcli import predict

    COUNT["continued"] += 1
    n = COUNT["continued"]
    source, whole, out = tmp_path / f"in{n}.txt", tmp_path / f"whole{n}.txt", tmp_path / f"out{n}.txt"
    rng = random.Random(n)
    source.write_text("".join("".join(rng.choice("abcdef") for _ in range(rng.randint(2, 7))) + "\n"
                              for _ in range(60)))
    cli("sample", reverser, "--input-file", source, "-o", whole, "--batch-size", "2")
    real = predict.predict_stream

    def stops(*args, **kwargs):  # as a kill leaves it: `groups` groups of 16 outputs written
        for i, lines in enumerate(real(*args, **kwargs)):
            if i == groups:
                raise KeyboardInterrupt
            yield lines

    predict.predict_stream = stops
    try:
        assert cli("sample", reverser, "--input-file", source, "-o", out, "--batch-size", "2", ok=False).exit_code == 130
    finally:
        predict.predict_stream = real
    if groups == 0:  # killed before its first outputs: no output was made, and --continue writes it whole
        assert not out.exists()
        cli("sample", reverser, "--input-file", source, "-o", out, "--continue", "--batch-size", "2")
        assert out.read_bytes() == whole.read_bytes()
        return
    data = bytearray(out.read_bytes())
    for edit in edits:
        if edit[0] == "truncate":
            del data[edit[1]:]
        elif edit[0] == "flip" and edit[1] < len(data):
            data[edit[1]] = edit[2]
        elif edit[0] == "append":
            data += edit[1]
        elif edit[0] == "insert":
            data[edit[1]:edit[1]] = edit[2]
        elif edit[0] == "drop line":
            lines = bytes(data).split(b"\n")
            if edit[1] < len(lines):
                del lines[edit[1]]
            data = bytearray(b"\n".join(lines))
    out.write_bytes(bytes(data))
    result = cli("sample", reverser, "--input-file", source, "-o", out, "--continue", "--batch-size", "2", ok=False)
    assert_clean(result)
    if result.exit_code == 0:
        assert out.read_bytes() == whole.read_bytes()  # continued: exactly the uninterrupted output
    else:
        COUNT["refused"] += 1
        assert result.exit_code == 2 and "--continue:" in result.stderr
        assert out.read_bytes() == bytes(data)  # refused: nothing was touched


# -- sweeps: any objective, any kill -------------------------------------------------------------

objective = st.one_of(st.floats(0.1, 5.0), st.sampled_from([float("nan"), float("inf"), -float("inf")]))


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(st.lists(objective, min_size=3, max_size=3), min_size=3, max_size=3))
def test_random_objectives_including_nan(tmp_path, cli, values):
    pytest.importorskip("optuna")
    import optuna

    from seqcli import sweep as S
    from seqcli.train import trainer

    COUNT["sweeps"] += 1
    folder = tmp_path / f"sweep{COUNT['sweeps']}"
    (tmp_path / "corpus.txt").write_text(make_corpus(200))
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    real, calls = trainer.evaluate, [0]

    def scripted(task, model, data, split, config, options=None, **kw):
        metrics = real(task, model, data, split, config, options, **kw)
        trial, evaluation = divmod(calls[0], 3)
        calls[0] += 1
        return {**metrics, "loss": values[trial][evaluation]}

    trainer.evaluate = scripted
    try:
        result = cli("sweep", tmp_path / "base.yaml", "train.optimizer.lr=loguniform(1e-3, 3e-2)", "train.max_steps=3",
                     "train.eval_every=1", "--trials", "3", "--pruner", "none", "--out", folder, ok=False)
    finally:
        trainer.evaluate = real
    assert_clean(result)
    assert result.exit_code == 0, result.stderr
    study = S.open_study(S.Spec.load(folder), folder, create=False)
    trials = study.get_trials()
    assert len(trials) == 3 and not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    for t, trial_values in zip(trials, values):
        finite = [v for v in trial_values if math.isfinite(v)]
        assert (t.state.name == "COMPLETE") == bool(finite), (t.state, trial_values)
        if finite:
            assert t.value == min(finite)
        else:
            assert "no finite validation loss" in t.user_attrs["note"]
    if any(t.state.name == "COMPLETE" for t in trials):
        best = study.best_trial
        assert (folder / "best.yaml").read_text() == (folder / f"trial-{best.number:04d}" / "recipe.yaml").read_text()


def test_random_kills_of_sweep_workers(tmp_path):
    """Sweep workers killed with SIGKILL at random moments, then `sweep resume`: every trial
    finished once, its evaluations each recorded once, nothing left running, best.yaml true."""
    pytest.importorskip("optuna")
    import json
    import signal
    import subprocess
    import sys
    import time

    from seqcli import sweep as S

    (tmp_path / "corpus.txt").write_text(make_corpus(200))
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    rng = random.Random(7)
    for case in range(4):
        folder = tmp_path / f"s{case}"
        args = [sys.executable, "-m", "seqcli", "sweep", str(tmp_path / "base.yaml"),
                "train.optimizer.lr=loguniform(1e-3, 3e-2)", "train.max_steps=12", "train.eval_every=4",
                "train.checkpoint_every=2", "--trials", "3", "--pruner", "none", "--sampler", "random",
                "--out", str(folder)]
        for kill in range(rng.randint(1, 2)):
            proc = subprocess.Popen(args if kill == 0 else [sys.executable, "-m", "seqcli", "sweep", "resume",
                                                             str(folder)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.5, 4.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if not (folder / "sweep.yaml").exists():  # killed before the sweep was made: start it again
            shutil.rmtree(folder, ignore_errors=True)
            assert subprocess.run(args, capture_output=True, timeout=600).returncode == 0
        result = subprocess.run([sys.executable, "-m", "seqcli", "sweep", "resume", str(folder)], capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        study = S.open_study(S.Spec.load(folder), folder, create=False)
        trials = [t for t in study.get_trials() if not t.user_attrs.get("replaced")]
        assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials), [t.state for t in trials]
        assert not [t for t in study.get_trials() if t.state.name == "RUNNING"]
        for t in trials:
            records = [json.loads(line) for line in (folder / f"trial-{t.number:04d}" / "metrics.jsonl").read_text()
                       .splitlines()]
            assert [r["step"] for r in records if r["split"] == "valid"] == [4, 8, 12]
        best = study.best_trial
        assert (folder / "best.yaml").read_text() == (folder / f"trial-{best.number:04d}" / "recipe.yaml").read_text()
