"""Images read and written sequentially with DRAW's attention: `glimpse` and `draw` learn, and
their pictures and numbers come out of `seqcli sample`."""

import json

import pytest
import torch

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn: pip install 'seqcli[digits]'")

from seqcli.nn import draw  # noqa: E402

GLIMPSE = ["model.hidden_size=48", "model.glimpses=3", "model.grid=3", "train.max_steps=200", "train.eval_every=200",
           "train.optimizer.lr=0.01"]
DRAW = ["model.hidden_size=48", "model.steps=4", "train.max_steps=200", "train.eval_every=200",
        "train.optimizer.lr=0.01", "sample.inputs=[]"]


def last_valid(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]


def digits(split="test"):
    from seqcli.data.datasets.digits import DigitsDataset

    return DigitsDataset().load().splits[split]


def as_text(image):
    return "; ".join(" ".join(f"{v:.3f}" for v in row) for row in image.tolist())


def test_read_and_write_are_the_filterbank_products():
    """A window with tiny filters on the pixel grid reads exactly the pixels under it, and
    writing that patch back puts them where they came from."""
    image = torch.arange(64.0).view(1, 8, 8)
    window = draw.Window(gx=torch.tensor([3.0]), gy=torch.tensor([4.0]), delta=torch.tensor([1.0]),
                         sigma=torch.tensor([0.05]), gamma=torch.tensor([1.0]))
    patch = draw.read(image, window, 3)  # rows 3..5, columns 2..4
    assert torch.allclose(patch[0], image[0, 3:6, 2:5])
    canvas = draw.write(patch, window, 8, 8)
    assert torch.allclose(canvas[0, 3:6, 2:5], image[0, 3:6, 2:5]) and canvas.sum() == pytest.approx(patch.sum())
    centred = draw.Locator(16, 8, 8, 4)(torch.zeros(1, 16))  # starts centred, spanning the image
    assert centred.gx.item() == centred.gy.item() == pytest.approx(3.5) and centred.delta.item() == pytest.approx(7 / 3)


def test_glimpse_classifier_learns_and_shows_where_it_looked(cli, tmp_path):
    run = tmp_path / "g"
    cli("run", "digits-glimpses", *GLIMPSE, "--run-dir", run)
    assert last_valid(run)["accuracy"] > 0.7  # 10 classes: chance is 0.1
    test = digits()[:20]
    inputs = tmp_path / "images.txt"
    inputs.write_text("\n".join(as_text(e["input"]) for e in test) + "\n")
    out = tmp_path / "glimpses.png"
    result = cli("sample", run, "--input-file", inputs, "--glimpse-plot", out)
    predicted = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert sum(p == str(e["label"].item()) for p, e in zip(predicted, test)) >= 12
    record = json.loads(out.with_suffix(".json").read_text())
    assert len(record) == 20 and all(len(r["glimpses"]) == 3 for r in record)
    g = record[0]["glimpses"][0]
    assert {"gx", "gy", "delta", "sigma", "gamma"} <= g.keys() and len(g["patch"]) == 3 and len(g["patch"][0]) == 3
    assert out.stat().st_size > 5_000


def test_draw_writes_each_class_step_by_step(cli, tmp_path):
    run = tmp_path / "d"
    cli("run", "digits-draw", *DRAW, "--run-dir", run)
    assert last_valid(run)["mse"] < 0.068  # the mean image of all digits scores 0.074, of each class 0.044
    out = tmp_path / "strip.png"
    result = cli("sample", run, *[a for k in range(10) for a in ("-i", str(k))], "--canvas-plot", out)
    assert result.stdout.count("class ") == 10
    record = json.loads(out.with_suffix(".json").read_text())
    assert [r["label"] for r in record] == [str(k) for k in range(10)]
    assert all(len(r["canvases"]) == 4 and len(r["windows"]) == 4 for r in record)
    # each class's final canvas looks more like its own class's mean image than like most others
    train = digits("train")
    means = torch.stack([torch.stack([e["input"] for e in train if e["label"].item() == k]).mean(0) for k in range(10)])
    finals = torch.tensor([r["canvases"][-1] for r in record])
    distances = ((finals[:, None] - means[None]) ** 2).flatten(2).mean(-1)  # (drawn, class mean)
    assert (distances.argmin(1) == torch.arange(10)).sum() >= 6
    # the canvas is built up: the last step is closer to the class mean than the first
    first = torch.tensor([r["canvases"][0] for r in record])
    assert ((finals - means) ** 2).mean() < ((first - means) ** 2).mean()


def test_bad_inputs_are_one_line(cli, tmp_path):
    run = tmp_path / "d"
    cli("run", "digits-draw", *DRAW, "train.max_steps=2", "--run-dir", run)
    result = cli("sample", run, "-i", "eleven", ok=False)
    assert result.exit_code == 2 and "unknown class 'eleven'" in result.stderr
    result = cli("sample", run, "-i", "3", "--glimpse-plot", tmp_path / "x.png", ok=False)
    assert "does not take this option" in result.stderr
    result = cli("run", "digits-glimpses", "dataset.name=synthetic", "dataset.problem=adding", "--run-dir",
                 tmp_path / "x", ok=False)
    assert result.exit_code == 2 and "task glimpse needs" in result.stderr, result.stderr
