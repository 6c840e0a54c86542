"""`seqcli plot` and TensorBoard logging: the pictures exist, and the numbers behind them are the runs'."""

import json
import sys

import pytest

from tests.conftest import TINY

pytest.importorskip("matplotlib", reason="plots need the plot extra: pip install 'seqcli[plot]'")


def records(run_dir, split):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


def png_size(path):
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


@pytest.fixture
def two_runs(cli, corpus, tmp_path):
    runs = []
    for hidden in (16, 48):
        run = tmp_path / f"h{hidden}"
        cli("run", "char-lm", f"dataset.path={corpus}", *TINY, f"model.hidden_size={hidden}", "train.max_steps=30",
            "train.optimizer.lr=0.01", "sample.prime=the", "--run-dir", run)
        runs.append(run)
    return runs


def test_plot_overlays_runs_and_reports_their_numbers(cli, two_runs, tmp_path):
    out = tmp_path / "curves.png"
    result = cli("plot", *two_runs, "-o", out)
    width, height = png_size(out)
    assert width > 800 and height > 300  # 4 panels: train loss, valid loss, bpc, perplexity
    assert "wrote" in result.stdout and "4 panels, 2 runs" in result.stdout
    for run in two_runs:
        valid = records(run, "valid")
        row = next(line for line in result.stdout.splitlines() if line.startswith("valid loss") and f" {run.name} " in line)
        first, last, best = row.split()[-3:]
        assert float(first) == pytest.approx(valid[0]["loss"], abs=1e-4)
        assert float(last) == pytest.approx(valid[-1]["loss"], abs=1e-4)
        assert float(best) == pytest.approx(min(r["loss"] for r in valid), abs=1e-4)
    # the larger model learns faster: the picture compares something real
    assert records(two_runs[1], "valid")[-1]["loss"] < records(two_runs[0], "valid")[-1]["loss"]


def test_plot_only_chosen_metrics(cli, two_runs, tmp_path):
    result = cli("plot", two_runs[0], "-m", "bpc", "-o", tmp_path / "bpc.png")
    assert "1 panels" in result.stdout and "valid bpc" in result.stdout and "train loss" not in result.stdout


def test_plot_refuses_to_overwrite_and_names_bad_input(cli, two_runs, tmp_path):
    out = tmp_path / "mine.png"
    out.write_bytes(b"a picture the user made")
    result = cli("plot", two_runs[0], "-o", out, ok=False)
    assert result.exit_code == 2 and "already exists; pass --force" in result.stderr
    assert out.read_bytes() == b"a picture the user made"
    cli("plot", two_runs[0], "-o", out, "--force")
    assert png_size(out)
    for args, message in [((tmp_path / "nope",), "no such run directory"),
                          ((tmp_path,), "no metrics.jsonl"),
                          ((two_runs[0], "-o", tmp_path / "x.jpg"), "give a name ending in .png"),
                          ((two_runs[0], "-m", "accuracy"), "no metric accuracy")]:
        result = cli("plot", *args, ok=False)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_without_matplotlib_it_says_how_to_install_it(cli, two_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    result = cli("plot", two_runs[0], "-o", tmp_path / "c.png", ok=False)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: plots need matplotlib: pip install 'seqcli[plot]'"


def test_tensorboard_logs_the_same_numbers(cli, corpus, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb"
    cli("run", "char-lm", f"dataset.path={corpus}", *TINY, "train.tensorboard=true", "sample.prime=the",
        "--run-dir", run)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("valid/loss")]
    expected = [(r["step"], r["loss"]) for r in records(run, "valid")]
    assert [s for s, _ in logged] == [s for s, _ in expected]
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert "train/loss" in events.Tags()["scalars"]


def test_tensorboard_missing_is_one_line(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    result = cli("run", "char-lm", "train.tensorboard=true", "--run-dir", tmp_path / "r", ok=False)
    assert result.exit_code == 2
    assert "pip install 'seqcli[tensorboard]'" in result.stderr


REVERSE = ["dataset.max_length=6", "dataset.symbols=6", "dataset.train_size=2000", "dataset.valid_size=100",
           "model.hidden_size=48", "model.embedding_size=16", "train.max_steps=250", "train.eval_every=250",
           "train.batch_size=32", "train.optimizer.lr=0.01", "sample.inputs=[abcdef]"]


def test_attention_plot_shows_the_reversal(cli, tmp_path):
    run = tmp_path / "rev"
    cli("run", "reverse", *REVERSE, "--run-dir", run)
    out = tmp_path / "att.png"
    result = cli("sample", run, "-i", "abcdef", "-i", "fca", "-i", "bbad", "--attention-plot", out)
    assert result.stdout.split() == ["fedcba", "acf", "dabb"]
    width, height = png_size(out)
    assert width > height > 100
    maps = json.loads(out.with_suffix(".json").read_text())
    assert [m["input"] for m in maps] == [list("abcdef"), list("fca"), list("bbad")]
    assert [m["output"] for m in maps] == [list("fedcba") + ["</s>"], list("acf") + ["</s>"], list("dabb") + ["</s>"]]
    for m in maps:
        n = len(m["input"])
        for j, row in enumerate(m["weights"][:n]):
            assert sum(row) == pytest.approx(1.0, abs=1e-3)
            assert max(range(n), key=row.__getitem__) == n - 1 - j  # output j looks at input n-1-j


def test_attention_plot_needs_attention_and_a_new_file(cli, tmp_path):
    run = tmp_path / "rev"
    cli("run", "reverse", *REVERSE, "train.max_steps=5", "model.attention=none", "--run-dir", run)
    result = cli("sample", run, "-i", "abc", "--attention-plot", tmp_path / "a.png", ok=False)
    assert result.exit_code == 2 and "this model has no attention" in result.stderr
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"x")
    result = cli("sample", run, "-i", "abc", "--attention-plot", mine, ok=False)
    assert "--attention-plot" in result.stderr and "already exists" in result.stderr and mine.read_bytes() == b"x"
    result = cli("sample", tmp_path / "rev", "--length", 5, ok=False)
    assert "does not take this option" in result.stderr
