"""Run folders stay trustworthy: consistent after a kill at any write, one writer at a time,
checkpoints verified, full disks and stale temporary files handled."""

import json
import os
import signal
import subprocess
import sys
import time

import torch

from seqcli.train import checkpoint

TINY = ["model.embedding_size=8", "model.hidden_size=16", "model.num_layers=1", "train.batch_size=4",
        "train.seq_len=8", "train.max_steps=12", "train.eval_every=6", "train.log_every=3",
        "train.keep_checkpoints=2", "sample.length=12", "sample.seed=3"]

# Runs seqcli's CLI, counting every write that commits something to a run folder (each
# atomic rename, each metric record) and killing itself with SIGKILL right after the Nth.
KILLER = """
import os, signal, sys
from seqcli.cli import main
from seqcli.train import trainer

limit = int(sys.argv.pop(1))
before = limit < 0  # a negative count: killed just before the Nth rename, its temporary file written
limit = abs(limit)
count = [0]

def boundary():
    count[0] += 1
    if count[0] == limit:
        os.kill(os.getpid(), signal.SIGKILL)

real_replace, real_write = os.replace, trainer.Trainer._write

def replace(src, dst, *a, **k):
    if before and "cache" not in str(dst):
        boundary()
    real_replace(src, dst, *a, **k)
    if not before and "cache" not in str(dst):
        boundary()

def write(self, record):
    real_write(self, record)
    if not before:  # killing before a rename counts renames only
        boundary()

os.replace = replace
trainer.Trainer._write = write
sys.argv[0] = "seqcli"
main()
"""


def seqcli(*args, killer_at=None):
    prefix = [sys.executable, "-c", KILLER, str(killer_at)] if killer_at else [sys.executable, "-m", "seqcli"]
    return subprocess.run([*prefix, *map(str, args)], capture_output=True, text=True, timeout=300)


def contents(run):
    """What a run folder holds, without what differs between any two runs (times, speeds)."""
    out = {"files": sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and p.name != ".lock")}
    out["recipe"] = (run / "recipe.yaml").read_text()
    out["samples"] = (run / "samples.txt").read_text() if (run / "samples.txt").exists() else None
    records = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key in ("tokens_per_s", "elapsed_s"):
            record.pop(key, None)
        records.append(record)
    out["metrics"] = records
    for name in out["files"]:
        if name.endswith(".pt"):
            ckpt = checkpoint.load(run / name)
            out[name] = (ckpt.step, ckpt.best, {k: v.clone() for k, v in ckpt.model.items()})
    return out


def same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], tuple):
            assert a[key][:2] == b[key][:2], key
            for name, tensor in a[key][2].items():
                assert torch.equal(tensor, b[key][2][name]), (key, name)
        else:
            assert a[key] == b[key], key


def test_a_kill_at_every_write_then_resume_ends_in_the_same_folder(recipe, tmp_path):
    whole = seqcli("run", recipe, *TINY, "--run-dir", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    expected = contents(tmp_path / "whole")
    boundaries = len(expected["metrics"]) + 3 * 2 + 1 + 1  # records; best, step-N, last at 2 evaluations; recipe; sample
    killed_at = []
    for n in range(1, boundaries + 1):
        run = tmp_path / f"killed-{n}"
        result = seqcli("run", recipe, *TINY, "--run-dir", run, killer_at=n)
        if result.returncode == 0:
            break  # fewer boundaries than counted: the run finished
        assert result.returncode == -signal.SIGKILL, result.stderr
        killed_at.append(n)
        resumed = seqcli("resume", run)
        assert resumed.returncode == 0, (n, resumed.stdout, resumed.stderr)
        same(contents(run), expected)
    assert len(killed_at) >= 12, killed_at


def test_a_kill_inside_the_first_checkpoints_writes_then_the_same_command(recipe, tmp_path):
    """Killed with a temporary file written but not yet renamed (the recipe, best.pt, the
    numbered checkpoint, last.pt): the same `seqcli run` command trains it again from the
    start and leaves no temporary file."""
    whole = seqcli("run", recipe, *TINY, "--run-dir", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    expected = contents(tmp_path / "whole")
    for n in range(1, 5):  # recipe.yaml; then best.pt, step-N.pt and last.pt of the first evaluation
        run = tmp_path / f"killed-{n}"
        result = seqcli("run", recipe, *TINY, "--run-dir", run, killer_at=-n)
        assert result.returncode == -signal.SIGKILL, result.stderr
        assert [p for p in run.rglob("*") if ".tmp-" in p.name], n  # it died holding a temporary file
        again = seqcli("run", recipe, *TINY, "--run-dir", run)
        assert again.returncode == 0, (n, again.stdout, again.stderr)
        assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
        same(contents(run), expected)


def test_two_writers_never_share_a_run_folder(recipe, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "seqcli", "run", recipe, *TINY, "train.max_steps=100000",
                              "train.eval_every=5", "--run-dir", run], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "last.pt").exists():
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.05)
        for args in (("run", recipe, "--run-dir", run), ("resume", run), ("run", recipe, "--run-dir", run, "--resume")):
            second = seqcli(*args)
            assert second.returncode == 2, second.stderr
            message = second.stderr.strip()
            assert len(message.splitlines()) == 1
            assert (f"run directory {run} is in use by process {first.pid}" in message
                    or "already exists and is not empty" in message), message
        for _ in range(3):  # readers see whole checkpoints while it writes
            assert seqcli("sample", run, "--length", "5").returncode == 0
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    resumed = seqcli("resume", run, "train.max_steps=20")  # the lock died with its process
    assert resumed.returncode == 0, resumed.stderr


def test_two_runs_started_together_into_one_folder(recipe, tmp_path):
    run = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "seqcli", "run", recipe, *TINY, "--run-dir", run],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = [err for code, err in results if code == 2][0]
    assert "in use by process" in loser or "already exists and is not empty" in loser


def test_flipped_bytes_are_caught(cli, recipe, tmp_path):
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "best.pt"
    data = bytearray(path.read_bytes())
    weight = checkpoint.load(path).model["embed.weight"].contiguous().view(torch.uint8).numpy().tobytes()
    at = bytes(data).find(weight[:64])
    assert at > 0
    data[at + 10] ^= 0x40
    path.write_bytes(bytes(data))
    result = cli("sample", tmp_path / "run", ok=False)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: damaged checkpoint: its contents do not match the checksum stored with "
                             f"them (changed or corrupted since it was written)\n")


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(cli, recipe, tmp_path, monkeypatch):
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "run")
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    real_save = torch.save

    def full(obj, f, *a, **k):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4096 vs 0: file write failed")

    class Nothing:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(os, "statvfs", lambda path: Nothing)
    result = cli("resume", tmp_path / "run", "train.max_steps=18", ok=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write checkpoint {tmp_path / 'run' / 'checkpoints'}")
    assert "no space left on the device" in result.stderr and "0.0 MB free" in result.stderr
    assert ".pt is kept" in result.stderr and "the previous " in result.stderr and len(result.stderr.splitlines()) == 1
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before
    assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if ".tmp-" in p.name]
    # the first checkpoint of a run: nothing to keep, and the message does not pretend otherwise
    monkeypatch.setattr(torch, "save", full)
    result = cli("run", recipe, *TINY, "--run-dir", tmp_path / "fresh", ok=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert result.exit_code == 1 and "there is no best.pt yet" in result.stderr and "kept" not in result.stderr


def test_temporary_files_of_killed_processes_are_cleaned(cli, recipe, tmp_path):
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "run")
    folder = tmp_path / "run" / "checkpoints"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = folder / f".last.pt.tmp-{dead.pid}"
    stale.write_bytes(b"half a checkpoint")
    mine = folder / f".best.pt.tmp-{os.getpid()}"  # a live process keeps its own
    mine.write_bytes(b"being written")
    cli("sample", tmp_path / "run", "--length", "3")
    assert not stale.exists() and mine.exists()


def test_a_run_that_fails_before_its_first_step_leaves_nothing(cli, recipe, tmp_path):
    result = cli("run", recipe, "train.seed=99999999999999999999999", "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and "train.seed: must be >= 0 and <= 4294967295" in result.stderr
    result = cli("run", recipe, "model.cell.name=lstm", "train.device=cuda:7", "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_skips_what_it_cannot_train_on(cli, tmp_path):
    result = cli("run", "adding", "model.cell={name: rnn, nonlinearity: relu}", "model.hidden_size=32",
                     "train.optimizer={name: sgd, lr: 100}", "train.clip_grad_norm=null", "train.nonfinite=skip",
                     "train.max_steps=30", "train.eval_every=30", "dataset.train_size=400", "dataset.valid_size=50",
                     "dataset.max_length=10", "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 0, result.stderr
    assert "batch skipped, weights unchanged" in result.stdout
    ckpt = checkpoint.load(tmp_path / "run")
    assert all(torch.isfinite(t).all() for t in ckpt.model.values())  # a non-finite update is never taken


def test_a_run_that_fails_at_its_first_step_leaves_nothing(cli, recipe, tmp_path, monkeypatch):
    from seqcli.errors import DataError
    from seqcli.tasks.language_model import LanguageModel

    def broken(self, model, batch, carry):
        raise DataError("a batch the task cannot read")

    monkeypatch.setattr(LanguageModel, "train_step", broken)
    result = cli("run", recipe, *TINY, "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and result.stderr == "error: a batch the task cannot read\n"
    assert not (tmp_path / "run").exists()  # the same command can be given again
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    result = cli("run", recipe, *TINY, "--run-dir", tmp_path / "mine", ok=False)
    assert "already exists and is not empty" in result.stderr  # a user's folder is never touched
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_sample_output_is_whole_or_absent_after_an_interruption(cli, recipe, tmp_path, monkeypatch):
    from seqcli import files

    cli("run", recipe, *TINY, "--run-dir", tmp_path / "run")
    out = tmp_path / "out.txt"
    out.write_text("the previous output\n")
    real = files.create_new

    class DiesHalfway:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(files, "create_new", lambda path: DiesHalfway(real(path)))
    result = cli("sample", tmp_path / "run", "--length", "30", "--output", out, "--force", ok=False)
    monkeypatch.setattr(files, "create_new", real)
    assert result.exit_code == 130
    assert out.read_text() == "the previous output\n"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
