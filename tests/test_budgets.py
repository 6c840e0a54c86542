"""Budgets and schedules in epochs, early stopping, the loss reduction, split sizes, and log
records that say the same thing everywhere."""

import json
import math
import re

import pytest
import torch

from seqcli.train import checkpoint

EPOCHS = """\
dataset: {{name: text, path: {corpus}, level: char}}
task: {{name: language_model}}
model: {{cell: {{name: lstm}}, embedding_size: 16, hidden_size: 32, num_layers: 1}}
train:
  batch_size: 8
  seq_len: 64
  max_epochs: 3
  eval_every: 10
  log_every: 5
  optimizer: {{name: sgd, lr: 1.0}}
  scheduler: {{name: step, start_epoch: 2, every_epochs: 1, gamma: 0.5}}
sample: {{length: 20}}
"""


@pytest.fixture
def epochs(tmp_path, corpus):
    path = tmp_path / "epochs.yaml"
    path.write_text(EPOCHS.format(corpus=corpus), encoding="utf-8")
    return path


def records(run, split="train"):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


def test_an_epoch_budget_and_an_epoch_schedule(cli, epochs, tmp_path):
    result = cli("run", epochs, "--run-dir", tmp_path / "run")
    run = tmp_path / "run"
    # 10,000 characters in 8 columns of 64-step chunks: 20 steps an epoch (9,983 train tokens)
    assert "to step 60 (3 epochs of 20 steps)" in result.stdout
    train = records(run)
    assert train[-1]["step"] == 60 and train[-1]["epoch"] == 3.0
    rates = {math.ceil(r["epoch"]): r["lr"] for r in train}  # the rate used in each epoch (1-based)
    assert rates == {1: 1.0, 2: 0.5, 3: 0.25}
    assert checkpoint.load(run, "last").epoch == 3
    result = cli("resume", run)
    assert "is finished: it has trained 3 epochs, train.max_epochs is 3" in result.stdout


def test_epoch_runs_resume_exactly_mid_epoch(cli, epochs, tmp_path):
    cli("run", epochs, "--run-dir", tmp_path / "whole")
    cli("run", epochs, "train.max_steps=30", "--run-dir", tmp_path / "parts")  # stops half-way into epoch 2
    assert checkpoint.load(tmp_path / "parts", "last").position == 10
    cli("resume", tmp_path / "parts", "train.max_steps=null")
    a, b = (checkpoint.load(tmp_path / name, "last") for name in ("whole", "parts"))
    assert a.step == b.step == 60
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    strip = [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in records(tmp_path / "whole")]
    assert strip == [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")}
                     for r in records(tmp_path / "parts")]


def test_early_stopping_ends_a_run_cleanly(cli, recipe, tmp_path):
    # a rate too small to change the weights in float32: the validation loss never improves
    result = cli("run", recipe, "train.optimizer={name: sgd, lr: 1e-30}", "train.max_steps=200", "train.eval_every=10",
                 "train.patience=2", "--run-dir", tmp_path / "run")
    run = tmp_path / "run"
    assert [r["step"] for r in records(run, "valid")] == [10, 20, 30]
    assert "early stop at step 30: no better valid loss in 2 evaluations (best" in result.stdout
    assert (run / "samples.txt").is_file()  # a finished run: its sample is written
    assert "stopped early at step 30" in cli("resume", run).stdout
    result = cli("resume", run, "train.patience=4")  # more patience: it trains on
    assert [r["step"] for r in records(run, "valid")] == [10, 20, 30, 40, 50]


def test_sequence_sum_scales_the_gradient_by_the_steps_per_sequence(recipe):
    from seqcli import build
    from seqcli.recipe.resolve import load_recipe
    from seqcli.train.stepper import Stepper

    grads = {}
    for reduction in ("token_mean", "sequence_sum"):
        r = load_recipe(str(recipe), [f"train.loss_reduction={reduction}", "train.clip_grad_norm=null"])
        data = build.dataset(r).load()
        task = build.task(r)
        torch.manual_seed(0)
        model = build.model(task, data, r)
        stepper = Stepper(task, model, r.train)
        batch = next(iter(task.batches(data, r.train, 0)))
        stepper.update(stepper.forward(batch, None))
        grads[reduction] = model.out.bias.grad.clone()
    assert torch.allclose(grads["sequence_sum"], grads["token_mean"] * 16, rtol=1e-4, atol=1e-7)  # seq_len 16


def test_split_sizes_count_examples_windows_and_lines(tmp_path):
    from seqcli.data.datasets.labeled import LabeledDataset
    from seqcli.data.datasets.series import SeriesDataset
    from seqcli.data.datasets.text import TextDataset

    csv = tmp_path / "s.csv"
    csv.write_text("t,v\n" + "".join(f"{i},{i % 7}\n" for i in range(500)))
    data = SeriesDataset(path=str(csv), target_columns=["t"], window=24, horizon=1, valid_size=30, test_size=60).load()
    assert len(data.splits["test"]) == 60 and len(data.splits["valid"]) == 30
    assert data.splits["test"][-1]["target"].item() == 499  # the last row is the last test target
    tsv = tmp_path / "l.tsv"
    tsv.write_text("input\tlabel\n" + "".join(f"a b {i}\t{i % 2}\n" for i in range(100)))
    data = LabeledDataset(path=str(tsv), valid_size=7, test_size=13).load()
    assert [len(data.splits[k]) for k in ("train", "valid", "test")] == [80, 7, 13]
    text = tmp_path / "t.txt"
    text.write_text("".join(f"line {i}\n" for i in range(100)))
    data = TextDataset(path=str(text), level="word", valid_size=5, test_size=10, cache=False).load()
    assert data.splits["test"].numel() == 10 * 3  # 'line', the number, <eos> per line


def test_bad_budget_and_schedule_keys_are_one_line(cli, recipe, epochs):
    result = cli("recipes", "validate", recipe, "train.max_steps=null", ok=False)
    assert "train.max_steps: give train.max_steps or train.max_epochs" in result.output
    result = cli("recipes", "validate", epochs, "train.scheduler={name: step, step_size: 10, every_epochs: 1}", ok=False)
    assert "override 'train.scheduler=" in result.output
    assert "train.scheduler.every_epochs: give step_size (steps) or every_epochs, not both" in result.output
    bad = epochs.with_name("bad.yaml")
    bad.write_text(epochs.read_text().replace("every_epochs: 1", "every_epochs: 1, start_step: 3"))
    result = cli("recipes", "validate", bad, ok=False)
    assert f"{bad}:11: train.scheduler.start_step: an every_epochs schedule starts at an epoch" in result.output
    result = cli("recipes", "validate", epochs, "train.scheduler={name: milestones, epochs: [3, 2]}", ok=False)
    assert "train.scheduler.epochs: must be increasing" in result.output
    result = cli("recipes", "validate", epochs, "train.patience=0", ok=False)
    assert "train.patience: must be >= 1" in result.output
    result = cli("recipes", "validate", epochs, "train.loss_reduction=sum", ok=False)
    assert "train.loss_reduction" in result.output and "token_mean" in result.output
    result = cli("run", epochs, "dataset.test_size=5", "dataset.train=x", ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_console_metrics_file_and_tensorboard_agree(cli, recipe, tmp_path):
    result = cli("run", recipe, "train.tensorboard=true", "--run-dir", tmp_path / "run")
    train = records(tmp_path / "run")
    printed = {int(m[1]): float(m[2]) for m in re.finditer(r"step (\d+)/\d+  loss ([\d.]+)", result.stdout)}
    assert printed == {r["step"]: round(r["loss"], 4) for r in train}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    board.Reload()
    logged = {e.step: e.value for e in board.Scalars("train/loss")}
    assert logged == pytest.approx({r["step"]: r["loss"] for r in train}, rel=1e-6)
