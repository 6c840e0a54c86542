"""Nothing lost: killed runs resume exactly, signals save, checkpoints survive kills."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from seqcli.train import checkpoint

LM = ["model.embedding_size=16", "model.hidden_size=64", "model.num_layers=2", "model.dropout=0.2",
      "train.batch_size=8", "train.seq_len=16", "train.max_steps=150", "train.eval_every=50", "train.log_every=5",
      "train.checkpoint_every=3", "sample.length=10"]
CLASSIFY = ["dataset={name: synthetic, problem: copy_memory, max_length: 3, delay: 4, train_size: 300, valid_size: 50}",
            "task.name=tag", "model={cell: {name: gru}, hidden_size: 32, embedding_size: 8, dropout: 0.3}",
            "train.batch_size=16", "train.max_steps=90", "train.eval_every=30", "train.log_every=5",
            "train.checkpoint_every=2", "sample={}"]


def seqcli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "seqcli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finished(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for_checkpoint(run_dir, proc, min_step=1):
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if last.exists():
            try:
                if checkpoint.load(last).step >= min_step:
                    return
            except Exception:
                pass  # caught between the write and the rename: look again
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    raise AssertionError("no checkpoint appeared")


def final_state(run_dir):
    ckpt = checkpoint.load(run_dir, "last")
    return ckpt.model, ckpt.step


def learning_records(run_dir):
    """The metric log without its timing fields."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("tokens_per_s", None)
        record.pop("elapsed_s", None)
        out.append(record)
    return out


@pytest.mark.parametrize("kind", ["language_model", "tag"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(recipe, tmp_path, kind):
    overrides = LM if kind == "language_model" else CLASSIFY
    code, _, err = finished(seqcli("run", recipe, *overrides, "--run-dir", tmp_path / "straight"))
    assert code == 0, err
    victim = seqcli("run", recipe, *overrides, "--run-dir", tmp_path / "killed")
    wait_for_checkpoint(tmp_path / "killed", victim, min_step=7)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = checkpoint.load(tmp_path / "killed", "last").step
    assert 7 <= killed_at < (150 if kind == "language_model" else 90)
    code, out, err = finished(seqcli("resume", tmp_path / "killed"))
    assert code == 0, err
    assert f"from step {killed_at} " in out
    straight, steps = final_state(tmp_path / "straight")
    resumed, resumed_steps = final_state(tmp_path / "killed")
    assert steps == resumed_steps
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    assert learning_records(tmp_path / "killed") == learning_records(tmp_path / "straight")


def test_ctrl_c_saves_prints_how_to_resume_and_resumes_exactly(recipe, tmp_path):
    code, _, err = finished(seqcli("run", recipe, *LM, "--run-dir", tmp_path / "straight"))
    assert code == 0, err
    proc = seqcli("run", recipe, *LM, "--run-dir", tmp_path / "stopped")
    wait_for_checkpoint(tmp_path / "stopped", proc, min_step=4)
    proc.send_signal(signal.SIGINT)
    code, out, err = finished(proc)
    assert code == 130, err
    assert "stopped: SIGINT at step" in err and f"continue with: seqcli resume {tmp_path / 'stopped'}" in err
    assert "Traceback" not in err
    assert checkpoint.load(tmp_path / "stopped", "last").step < 150
    code, _, err = finished(seqcli("run", recipe, *LM, "--run-dir", tmp_path / "stopped", "--resume"))
    assert code == 0, err
    a, _ = final_state(tmp_path / "straight")
    b, _ = final_state(tmp_path / "stopped")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_also_saves(recipe, tmp_path):
    proc = seqcli("run", recipe, *LM, "--run-dir", tmp_path / "run")
    wait_for_checkpoint(tmp_path / "run", proc)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finished(proc)
    assert code == 143 and "stopped: SIGTERM at step" in err


def test_a_second_ctrl_c_stops_at_once_and_leaves_whole_checkpoints(recipe, tmp_path):
    proc = seqcli("run", recipe, *LM, "model.hidden_size=256", "--run-dir", tmp_path / "run")
    wait_for_checkpoint(tmp_path / "run", proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    code, _, err = finished(proc)
    assert code == 130 and "Traceback" not in err
    assert checkpoint.load(tmp_path / "run", "last").step >= 1  # whatever was written last is whole


def test_finished_runs_say_so_and_extend_explicitly(cli, recipe, tmp_path):
    run = tmp_path / "run"
    cli("run", recipe, "--run-dir", run)
    again = cli("resume", run)
    assert "is finished: it has trained 20 steps, train.max_steps is 20" in again.stdout
    assert checkpoint.load(run, "last").step == 20
    longer = cli("resume", run, "train.max_steps=30")
    assert "recipe change: train.max_steps: 20 -> 30" in longer.stdout
    assert checkpoint.load(run, "last").step == 30
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "valid"]
    assert steps == [10, 20, 30]


def test_changed_recipe_is_refused_unless_forced(cli, recipe, tmp_path):
    run = tmp_path / "run"
    cli("run", recipe, "train.max_steps=10", "--run-dir", run)
    refused = cli("run", recipe, "model.hidden_size=16", "train.max_steps=20", "--run-dir", run, "--resume", ok=False)
    assert refused.exit_code == 2
    assert "the recipe differs from the one" in refused.stderr and "model.hidden_size: 32 -> 16" in refused.stderr
    assert checkpoint.load(run, "last").step == 10
    refused = cli("resume", run, "train.optimizer.lr=0.5", "train.max_steps=20", ok=False)
    assert "train.optimizer.lr: 0.01 -> 0.5" in refused.stderr
    cli("resume", run, "train.optimizer.lr=0.5", "train.max_steps=20", "--force")
    assert checkpoint.load(run, "last").step == 20
    cli("resume", run, "train.log_every=2", "train.max_steps=24")  # a safe change needs no --force


def test_resume_needs_a_checkpoint(cli, tmp_path):
    result = cli("resume", tmp_path / "nothing", ok=False)
    assert result.exit_code == 2 and "no such checkpoint file or run directory" in result.stderr
    result = cli("resume", ok=False)
    assert result.exit_code == 2 and "no runs with a checkpoint under runs/" in result.stderr


def test_keep_last_n_and_the_best(cli, recipe, tmp_path):
    run = tmp_path / "run"
    cli("run", recipe, "train.max_steps=30", "train.eval_every=5", "train.keep_checkpoints=3", "--run-dir", run)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.pt", "last.pt", "step-00000020.pt", "step-00000025.pt", "step-00000030.pt"]


def test_nonfinite_loss_can_skip_the_batch(cli, recipe, tmp_path, monkeypatch):
    from conftest import poison_losses

    poison_losses(monkeypatch, {3, 12}, float("inf"))
    result = cli("run", recipe, "train.nonfinite=skip", "--run-dir", tmp_path / "run")
    assert "step 3: the loss is inf; batch skipped, weights unchanged (1 so far)" in result.stdout
    assert "step 12: the loss is inf; batch skipped, weights unchanged (2 so far)" in result.stdout
    ckpt = checkpoint.load(tmp_path / "run")
    assert all(torch.isfinite(t).all() for t in ckpt.model.values())


CHILD = """
import sys, torch
from seqcli.train import checkpoint
path = sys.argv[1]
i = 0
while True:
    i += 1
    checkpoint.save({"step": i, "weights": torch.full((4_000_000,), float(i))}, path)
"""


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.31, 0.5])
def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path, delay):
    path = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)])
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] >= 1 and torch.all(ckpt["weights"] == ckpt["step"])


def test_absurd_sizes_are_refused_before_allocating(cli, recipe, tmp_path):
    started = time.time()
    result = cli("run", recipe, "model.hidden_size=60000", "model.embedding_size=60000", "--run-dir", tmp_path / "r",
                 ok=False)
    assert result.exit_code == 2 and "the model would have" in result.stderr and "GiB" in result.stderr
    assert time.time() - started < 30
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_a_run_directory_that_cannot_be_created(cli, recipe, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = cli("run", recipe, "--run-dir", tmp_path / "afile" / "run", ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot create run directory {tmp_path / 'afile' / 'run'}: Not a directory\n"


def test_a_checkpoint_from_another_task_in_the_wrong_command(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "lm")
    result = cli("sample", tmp_path / "lm", "--input", "hello", ok=False)
    assert result.exit_code == 2
    assert "--input/--input-file: the language_model task does not take this option" in result.stderr
