"""Distributed data-parallel training: 2 processes on CPU (gloo), through `--nproc-per-node`."""

import subprocess
import sys

import pytest
import torch

from seqcli.train import checkpoint

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")

# No dropout and a batch the 2 processes split evenly: their averaged gradient is the one
# process's gradient of the same global batch, up to the order of floating-point sums.
SMALL = ["model.embedding_size=16", "model.hidden_size=32", "model.num_layers=2", "model.dropout=0",
         "train.batch_size=8", "train.seq_len=16", "train.eval_every=4", "train.log_every=2",
         "train.eval_batches=2", "sample.length=10", "sample.prime=the"]


def seqcli(*args):
    return subprocess.run([sys.executable, "-m", "seqcli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def weights(run_dir):
    return checkpoint.load(run_dir, "last").model


def assert_close(a, b, tol):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=tol, rtol=0), (key, (a[key] - b[key]).abs().max().item())


def test_two_processes_train_like_one_with_the_same_global_batch_and_resume(corpus, tmp_path):
    data = [f"dataset.path={corpus}"]
    one = seqcli("run", "char-lm", *data, *SMALL, "train.max_steps=8", "--run-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = seqcli("run", "char-lm", *data, *SMALL, "train.max_steps=8", "--run-dir", tmp_path / "two",
                 "--nproc-per-node", 2)
    assert two.returncode == 0, two.stderr
    assert "in 2 processes" in two.stdout
    assert two.stdout.count("run directory") == 1  # only rank 0 prints
    assert_close(weights(tmp_path / "one"), weights(tmp_path / "two"), 1e-4)

    # stop at step 4, resume distributed to 8: the same weights as the uninterrupted run
    half = seqcli("run", "char-lm", *data, *SMALL, "train.max_steps=4", "--run-dir", tmp_path / "half",
                  "--nproc-per-node", 2)
    assert half.returncode == 0, half.stderr
    assert len(checkpoint.load(tmp_path / "half", "last").ranks) == 2
    more = seqcli("resume", tmp_path / "half", "train.max_steps=8", "--nproc-per-node", 2)
    assert more.returncode == 0, more.stderr
    assert "from step 4" in more.stdout
    assert_close(weights(tmp_path / "two"), weights(tmp_path / "half"), 1e-6)
    lines = (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()
    assert [line.count('"split": "valid"') for line in lines].count(1) == 2  # steps 4 and 8, written once


def test_every_rank_loads_a_plugin_cell_and_a_shuffled_task_splits_its_batches(cli, tmp_path):
    from seqcli import registry

    if "mingru" not in registry.names("cell"):
        pytest.skip("needs the example plugin seqcli-mingru: pip install -e plugins/seqcli-mingru")
    run = seqcli("run", "reverse", "model.cell.name=mingru", "model.hidden_size=32", "model.embedding_size=16",
                 "train.max_steps=6", "train.eval_every=3", "train.batch_size=16", "dataset.train_size=200", "dataset.valid_size=40",
                 "--run-dir", tmp_path / "r", "--nproc-per-node", 2)
    assert run.returncode == 0, run.stderr
    state = checkpoint.load(tmp_path / "r", "last")
    assert state.step == 6 and state.plugins["cell"].package == "seqcli-mingru"


def test_distributed_errors_are_one_line(corpus, tmp_path):
    bad = seqcli("run", "char-lm", f"dataset.path={corpus}", *SMALL, "train.batch_size=1", "train.max_steps=2",
                 "--run-dir", tmp_path / "b", "--nproc-per-node", 2)
    assert bad.returncode == 1
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors[0] == "error: train.batch_size 1 is smaller than the 2 processes; each needs part of every batch"
    assert "Traceback" not in bad.stderr
    multi = seqcli("run", "char-lm", "--nnodes", 2, "--nproc-per-node", 1, "--run-dir", tmp_path / "m")
    assert multi.returncode == 2 and "--nnodes > 1 needs --node-rank" in multi.stderr
    zero = seqcli("run", "char-lm", "--nproc-per-node", 0, "--run-dir", tmp_path / "z")
    assert zero.returncode == 2 and "--nproc-per-node and --nnodes must be at least 1" in zero.stderr
    assert not (tmp_path / "z").exists() and not (tmp_path / "m").exists()


def test_ctrl_c_stops_every_rank_at_one_step_and_the_run_resumes(corpus, tmp_path):
    import os
    import signal
    import time

    run_dir = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-m", "seqcli", "run", "char-lm", f"dataset.path={corpus}", *SMALL,
                             "train.max_steps=100000", "--run-dir", run_dir, "--nproc-per-node", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every process gets it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stops = [line for line in err.splitlines() if line.startswith("stopped: SIGINT at step")]
    assert len(stops) == 1, err
    step = checkpoint.load(run_dir, "last").step
    assert f"SIGINT at step {step};" in stops[0]
    more = seqcli("resume", run_dir, f"train.max_steps={step + 4}", "--nproc-per-node", 2)
    assert more.returncode == 0, more.stderr
    assert checkpoint.load(run_dir, "last").step == step + 4


def test_resuming_a_missing_run_is_refused_before_starting_workers(tmp_path):
    result = seqcli("resume", tmp_path / "nothing", "--nproc-per-node", 2)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nothing'}: no such checkpoint file or run directory"


def test_two_node_launchers_on_the_loopback_train_as_one_two_process_run(corpus, tmp_path):
    import socket

    with socket.socket() as s:  # a free port on the loopback address
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = [f"dataset.path={corpus}"]
    common = ["run", "char-lm", *data, *SMALL, "train.max_steps=6", "--nnodes", 2, "--nproc-per-node", 1,
              "--rdzv-endpoint", f"127.0.0.1:{port}"]
    nodes = [subprocess.Popen([sys.executable, "-m", "seqcli", *map(str, common), "--node-rank", str(rank),
                               "--run-dir", tmp_path / f"node{rank}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "in 2 processes" in outputs[0][0]
    assert not (tmp_path / "node1" / "checkpoints").exists()  # only global rank 0 writes
    single = seqcli("run", "char-lm", *data, *SMALL, "train.max_steps=6", "--nproc-per-node", 2,
                    "--run-dir", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    assert_close(weights(tmp_path / "node0"), weights(tmp_path / "single"), 1e-6)


def test_more_gpu_workers_than_gpus_is_refused_before_any_starts(cli, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = cli("run", "char-lm", f"dataset.path={corpus}", "--nproc-per-node", 2, "--run-dir", tmp_path / "r",
                 ok=False)
    assert result.exit_code == 2 and result.stderr == (
        "error: --nproc-per-node 2: each process on a GPU takes one, and this machine has 1; use --nproc-per-node 1, "
        "or train.device=cpu\n")
    assert not (tmp_path / "r").exists()
