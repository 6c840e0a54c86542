"""Nothing a user made is written through, read as an output, or lost: seqcli's own files are
never followed through links, outputs are checked against inputs and file kinds before any
work, `--continue` trusts only what seqcli wrote, and a run stopped before its first
checkpoint starts again with the same command."""

import errno
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from seqcli.cli import app

TINY = ["model.embedding_size=8", "model.hidden_size=16", "model.num_layers=1", "train.batch_size=4",
        "train.seq_len=8", "train.max_steps=6", "train.eval_every=6", "train.log_every=3", "sample.length=5"]


def one_line(result, code=2):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def reverser(tmp_path_factory):
    run = tmp_path_factory.mktemp("nothing-lost") / "run"
    result = CliRunner().invoke(app, ["run", "reverse", "train.max_steps=60", "train.eval_every=60",
                                      "train.batch_size=32", "model.hidden_size=32", "dataset.train_size=600",
                                      "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def finished(cli, recipe, tmp_path):
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "run")
    return tmp_path / "run"


# -- seqcli's own files: never through a link ---------------------------------------------------

def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(cli, finished, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("my notes\n")
    lock = finished / ".lock"
    lock.unlink()
    lock.symlink_to(precious)
    message = one_line(cli("resume", finished, "train.max_steps=8", ok=False))
    assert f"{lock}: the run directory's lock is a symbolic link" in message
    assert precious.read_text() == "my notes\n"
    lock.unlink()
    lock.symlink_to(tmp_path / "created-by-nobody")  # dangling: its target is never created
    one_line(cli("resume", finished, "train.max_steps=8", ok=False))
    assert not (tmp_path / "created-by-nobody").exists()
    lock.unlink()
    os.mkfifo(lock)
    assert "is a FIFO, not a regular file" in one_line(cli("resume", finished, "train.max_steps=8", ok=False))
    lock.unlink()
    cli("resume", finished, "train.max_steps=8")  # a lock of its own again: it trains


def test_a_sweep_lock_that_is_a_link_is_refused(tmp_path):
    from seqcli import sweep
    from seqcli.errors import SeqcliError

    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    (tmp_path / "study.db.seqcli-lock").symlink_to(precious)
    with pytest.raises(SeqcliError, match="sweep lock is a symbolic link"):
        with sweep.locked(tmp_path / "study.db.seqcli-lock"):
            pass
    assert precious.read_text() == "keep"


def test_temporary_files_are_created_afresh_never_through_a_planted_link(tmp_path):
    from seqcli.files import temporary, write_atomic

    target, victim = tmp_path / "out.txt", tmp_path / "victim.txt"
    victim.write_text("untouched")
    temporary(target).symlink_to(victim)  # a link where the temporary file will go
    write_atomic(target, "new contents")
    assert target.read_text() == "new contents" and victim.read_text() == "untouched"
    assert not temporary(target).exists()


def test_seqcli_never_renames_over_a_folder_fifo_or_device(tmp_path):
    from seqcli.errors import SeqcliError
    from seqcli.files import write_atomic

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    kinds = ["fifo", "folder"]
    if os.geteuid() == 0:
        os.mknod(tmp_path / "device", 0o600 | 0o020000, os.makedev(1, 7))  # a /dev/full of our own
        kinds.append("device")
    for name in kinds:
        with pytest.raises(SeqcliError, match="never replaces a folder, device or FIFO"):
            write_atomic(tmp_path / name, "x")
    assert (tmp_path / "folder").is_dir() and not list((tmp_path / "folder").iterdir())
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# -- outputs a user names -------------------------------------------------------------------------

def test_an_output_that_is_the_input_is_refused_before_anything_is_touched(cli, reverser, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("abc\ndef\n")
    (tmp_path / "link.txt").symlink_to(source)
    os.link(source, tmp_path / "hard.txt")
    for output in (source, tmp_path / "link.txt", tmp_path / "hard.txt"):
        for mode in ("--force", "--continue"):
            message = one_line(cli("sample", reverser, "--input-file", source, "-o", output, mode, ok=False))
            assert f"--output {output}: is the input {source}" in message
    picture = tmp_path / "in.png"  # an input file that happens to end in .png
    picture.write_text("abc\n")
    message = one_line(cli("sample", reverser, "--input-file", picture, "--attention-plot", picture, "--force", ok=False))
    assert f"--attention-plot {picture}: is the input" in message
    assert source.read_text() == "abc\ndef\n" and picture.read_text() == "abc\n"


def test_an_output_that_is_not_a_regular_file_is_never_replaced_nor_read(cli, reverser, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("abc\n")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    outputs = [tmp_path / "fifo", tmp_path / "folder"]
    if os.geteuid() == 0:
        os.mknod(tmp_path / "full", 0o600 | 0o020000, os.makedev(1, 7))
        outputs.append(tmp_path / "full")
    for output in outputs:
        for args in (["-i", "abc", "--force"], ["--input-file", source, "--continue"],
                     ["--input-file", source, "--force"]):
            message = one_line(cli("sample", reverser, *args, "-o", output, ok=False))
            assert "not a regular file" in message, message
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "folder").is_dir()
    if os.geteuid() == 0:
        assert (tmp_path / "full").is_char_device()


def test_an_output_in_a_missing_folder_is_refused_before_decoding(cli, reverser, tmp_path, monkeypatch):
    from seqcli import inference

    def never(*args, **kwargs):
        raise AssertionError("decoded before the output was checked")

    monkeypatch.setattr(inference, "run_sample", never)
    source = tmp_path / "in.txt"
    source.write_text("abc\n")
    for args in (["-i", "abc"], ["--input-file", source]):
        message = one_line(cli("sample", reverser, *args, "-o", tmp_path / "missing" / "dir" / "o.txt", ok=False))
        assert "folder" in message and "does not exist" in message


def test_a_symlinked_output_writes_the_file_it_names(cli, reverser, tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    (tmp_path / "link.txt").symlink_to(real)
    cli("sample", reverser, "-i", "abc", "-o", tmp_path / "link.txt", "--force")
    expected = cli("sample", reverser, "-i", "abc").stdout
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() == expected != "old\n"


# -- --continue trusts only what seqcli wrote ------------------------------------------------------

def inputs(n, seed=0):
    import random

    rng = random.Random(seed)
    return "".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) + "\n" for _ in range(n))


def killed_midway(cli, run, source, output, monkeypatch, groups=2, extra=()):
    """A bulk prediction stopped after `groups` groups of 16 outputs, as a kill leaves it."""
    from seqcli import predict

    real = predict.predict_stream

    def stops(*args, **kwargs):
        for n, lines in enumerate(real(*args, **kwargs)):
            if n == groups:
                raise KeyboardInterrupt
            yield lines

    monkeypatch.setattr(predict, "predict_stream", stops)
    result = cli("sample", run, "--input-file", source, "-o", output, "--batch-size", "2", *extra, ok=False)
    monkeypatch.setattr(predict, "predict_stream", real)
    assert result.exit_code == 130
    return output.read_text()


def test_continue_finishes_an_output_of_n_best_lists(cli, reverser, tmp_path, monkeypatch):
    source, whole, out = tmp_path / "in.txt", tmp_path / "whole.txt", tmp_path / "out.txt"
    source.write_text(inputs(100))
    nbest = ("--beam-size", "3", "--n-best", "2")
    cli("sample", reverser, "--input-file", source, "-o", whole, "--batch-size", "2", *nbest)
    assert whole.read_text().count("\t") == 200  # two scored outputs per input
    part = killed_midway(cli, reverser, source, out, monkeypatch, extra=nbest)
    assert 0 < len(part) < len(whole.read_text())
    cli("sample", reverser, "--input-file", source, "-o", out, "--batch-size", "2", *nbest, "--continue")
    assert out.read_text() == whole.read_text()


def test_continue_checks_the_output_belongs_to_this_input_model_and_options(cli, reverser, tmp_path, monkeypatch):
    source, other = tmp_path / "in.txt", tmp_path / "other.txt"
    source.write_text(inputs(100))
    other.write_text(inputs(100, seed=1))
    whole = tmp_path / "whole.txt"
    cli("sample", reverser, "--input-file", source, "-o", whole)
    result = cli("sample", reverser, "--input-file", source, "-o", whole, "--continue")  # complete: nothing to add
    assert "wrote 0 outputs" in result.stderr and "after the 100 it had" in result.stderr
    mine = tmp_path / "mine.txt"
    mine.write_text("an output seqcli did not write\n")
    message = one_line(cli("sample", reverser, "--input-file", source, "-o", mine, "--continue", ok=False))
    assert "has no record of what it was written from" in message
    assert mine.read_text() == "an output seqcli did not write\n"

    out = tmp_path / "out.txt"
    written = killed_midway(cli, reverser, source, out, monkeypatch)
    assert written.count("\n") == 32 and (tmp_path / ".out.txt.seqcli-continue").is_file()
    checks = [(["--input-file", other], f"was written from {source}, not {other}"),
              (["--input-file", source, "--beam-size", "3"], "was written with other options (beam_size: 4 then, 3 now)"),
              (["--input-file", source, "-i", "xyz"], "was written with other --input values")]
    for args, expected in checks:
        message = one_line(cli("sample", reverser, *args, "-o", out, "--continue", ok=False))
        assert expected in message, message
    assert out.read_text() == written  # refused: nothing changed
    source.write_text(inputs(100) + "abc\n")
    message = one_line(cli("sample", reverser, "--input-file", source, "-o", out, "--continue", ok=False))
    assert "was written from another version of" in message
    source.write_text(inputs(100))
    result = cli("sample", reverser, "--input-file", source, "-o", out, "--continue")
    assert "after the 32 it had" in result.stderr and out.read_text() == whole.read_text()


def test_continue_refuses_a_damaged_output_and_redoes_lines_it_cannot_vouch_for(cli, reverser, tmp_path,
                                                                                monkeypatch):
    source, whole, out = tmp_path / "in.txt", tmp_path / "whole.txt", tmp_path / "out.txt"
    source.write_text(inputs(80))
    cli("sample", reverser, "--input-file", source, "-o", whole)
    written = killed_midway(cli, reverser, source, out, monkeypatch)
    out.write_text(written.replace("\n", "\nX", 1))  # an edit inside what seqcli wrote
    message = one_line(cli("sample", reverser, "--input-file", source, "-o", out, "--continue", ok=False))
    assert "changed since seqcli wrote it" in message
    out.write_text(written[:10])
    assert "is shorter than" in one_line(cli("sample", reverser, "--input-file", source, "-o", out, "--continue",
                                            ok=False))
    out.write_text(written + "cba\nlines a kill left\nbehind, unvouched")
    cli("sample", reverser, "--input-file", source, "-o", out, "--continue")
    assert out.read_text() == whole.read_text()


def test_continue_refuses_a_record_nested_too_deeply(cli, reverser, tmp_path, monkeypatch):
    source, out = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text(inputs(40))
    killed_midway(cli, reverser, source, out, monkeypatch)
    record = tmp_path / ".out.txt.seqcli-continue"
    assert record.is_file()
    for damaged in ("[" * 100_000, '{"identity": {"options": ' + "[" * 900 + "]" * 900 + '}, "lines": 1, "bytes": 1, '
                                  '"sha256": "x"}'):
        record.write_text(damaged)
        message = one_line(cli("sample", reverser, "--input-file", source, "-o", out, "--continue", ok=False))
        assert message.startswith("error: --continue: ") and "pass --force to write it anew" in message


def test_continue_needs_a_named_input(cli, reverser, tmp_path):
    message = one_line(cli("sample", reverser, "--input-file", "-", "-o", tmp_path / "o.txt", "--continue", ok=False))
    assert "needs a named --input-file" in message


# -- a run stopped before its first checkpoint ------------------------------------------------------

def test_a_run_killed_after_only_a_temporary_recipe_starts_again_with_the_same_command(cli, recipe, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(f"{dead.pid}\n")
    (run / f".recipe.yaml.tmp-{dead.pid}").write_text("dataset: {name: te")
    message = one_line(cli("resume", run, ok=False))
    assert "stopped before it wrote its recipe; start it again with the same seqcli run command" in message
    cli("run", recipe, *TINY, "--run-dir", run)
    assert (run / "checkpoints" / "last.pt").is_file()
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]


def test_a_first_checkpoint_that_hits_a_full_disk_leaves_a_folder_the_same_command_reuses(cli, recipe, tmp_path,
                                                                                         monkeypatch):
    from seqcli.train import checkpoint

    real = checkpoint.save

    def full_after_best(state, path):
        if path.name != "best.pt":
            raise checkpoint.write_error(OSError(errno.ENOSPC, "No space left on device"), path, state)
        real(state, path)

    monkeypatch.setattr(checkpoint, "save", full_after_best)
    message = one_line(cli("run", recipe, *TINY, "--run-dir", tmp_path / "run", ok=False), code=1)
    assert "no space left on the device" in message
    assert not (tmp_path / "run").exists()  # it made the folder, and took it away with what it wrote
    (tmp_path / "mine").mkdir()
    one_line(cli("run", recipe, *TINY, "--run-dir", tmp_path / "mine", ok=False), code=1)
    assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())  # the user's folder stays
    monkeypatch.setattr(checkpoint, "save", real)
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "run")
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "mine")


def test_a_run_killed_inside_its_first_checkpoint_restarts_with_the_same_command(cli, recipe, tmp_path):
    cli("run", recipe, *TINY, "--run-dir", tmp_path / "whole")
    run = tmp_path / "run"
    cli("run", recipe, *TINY, "--run-dir", run)
    # as a kill inside the first checkpoint's writes leaves it: best.pt whole, last.pt a temporary
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    last = run / "checkpoints" / "last.pt"
    last.rename(run / "checkpoints" / f".last.pt.tmp-{dead.pid}")
    (run / "samples.txt").unlink()
    message = one_line(cli("run", recipe, *TINY, "train.max_steps=7", "--run-dir", run, ok=False))
    assert "holds a run that stopped before its first checkpoint, with another recipe" in message
    cli("run", recipe, *TINY, "--run-dir", run)  # the same command: trained again from the start
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
    for name in ("best.pt", "last.pt"):
        a, b = (torch.load(r / "checkpoints" / name, weights_only=True)["model"] for r in (run, tmp_path / "whole"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert (run / "samples.txt").read_text() == (tmp_path / "whole" / "samples.txt").read_text()


def test_resume_refuses_a_changed_precision_without_force(cli, finished):
    message = one_line(cli("resume", finished, "train.max_steps=8", "train.precision=bf16", ok=False))
    assert "train.precision: 'fp32' -> 'bf16'" in message and "--force" in message
    cli("resume", finished, "train.max_steps=8", "train.precision=bf16", "--force")


# -- every field of a checkpoint is checked before use -------------------------------------------

def crafted(run, tmp_path, name, change):
    """A copy of a run whose last.pt was changed by `change` and sealed again (a crafted file
    whose checksum holds)."""
    import shutil

    from seqcli.train import checkpoint

    copy = tmp_path / name
    shutil.copytree(run, copy)
    obj = torch.load(copy / "checkpoints" / "last.pt", weights_only=True)
    change(obj)
    checkpoint.seal(obj)
    torch.save(obj, copy / "checkpoints" / "last.pt")
    return copy


def deep(n):
    value = 0
    for _ in range(n):
        value = [value]
    return value


CRAFTED = {
    "carry-type": (lambda o: o.update(carry="a string"), "carry: expected tensors"),
    "carry-shape": (lambda o: o.update(carry=(torch.zeros(3), torch.zeros(3))), "its carry (the state handed"),
    "rng-torch": (lambda o: o["rng"].update(torch=torch.zeros(10, dtype=torch.uint8)), "rng: torch: not a CPU"),
    "rng-python": (lambda o: o["rng"].update(python=[3, [1, 2], None]), "rng: python: not a random.getstate()"),
    "rng-missing": (lambda o: o.update(rng={"torch": o["rng"]["torch"]}), "rng: must hold the 'torch' and 'python'"),
    "optimizer-shape": (lambda o: o["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
                        "optimizer state 0.exp_avg has shape (3,)"),
    "optimizer-groups": (lambda o: o["optimizer"].update(param_groups=[{"params": ["x"]}]),
                         "optimizer: param_groups.0: must list parameter indices"),
    "optimizer-count": (lambda o: o["optimizer"]["param_groups"][0].update(params=[0]),
                        "the optimizer state has 1 parameters"),
    "best": (lambda o: o.update(best={"metric": "loss", "value": "low"}), "best: must be {metric, value, step, stale}"),
    "ranks": (lambda o: o.update(ranks=[{"carry": None}]), "ranks: 0: must hold the process's 'carry' and 'rng'"),
    "extra-weights": (lambda o: o["model"].update({"extra.weight": torch.zeros(2)}), "unexpected keys: extra.weight"),
    "window": (lambda o: o.update(window=[float("nan"), 1]), "window must be [loss sum, steps]"),
    "window-steps": (lambda o: o.update(window=[0.5, 1.5]), "window must be [loss sum, steps]"),
    "window-huge": (lambda o: o.update(window=[1e308, 3]), "window must be [loss sum, steps]"),
    "optimizer-lr": (lambda o: o["optimizer"]["param_groups"][0].update(lr="fast"),
                     "optimizer param_groups.0.lr is 'fast', not a value like"),
    "optimizer-negative-lr": (lambda o: o["optimizer"]["param_groups"][0].update(lr=-1.0),
                              "optimizer param_groups.0.lr is '-1.0'"),
    "optimizer-betas": (lambda o: o["optimizer"]["param_groups"][0].update(betas="ab"),
                        "optimizer param_groups.0.betas is 'ab'"),
    "optimizer-amsgrad": (lambda o: o["optimizer"]["param_groups"][0].update(amsgrad="x"),
                          "optimizer param_groups.0.amsgrad is 'x'"),
    "optimizer-step": (lambda o: o["optimizer"]["state"][0].update(step=torch.tensor(-5.0)),
                       "optimizer state 0.step is '-5.0', not a count of steps"),
    "position": (lambda o: o.update(position=10**6), "position 1000000 is past the end of an epoch"),
    "deep": (lambda o: o.update(data_info={"nested": deep(300)}), "values nested more than 64 levels deep"),
    "fields": (lambda o: o["fields"].update(text={"kind": "vocab", "tokens": [1, 2], "level": "char"}),
               "fields: ValueError: vocab: tokens must be a non-empty list of strings"),
    "metrics": (lambda o: o.update(metrics={"loss": [1]}), "metrics: must map metric names to numbers"),
    "average-kind": (lambda o: o.update(average={"kind": "swa", "state": {}}),
                     "average: must be {kind, state} with kind one of ema, ntasgd"),
    "average-state": (lambda o: o.update(average={"kind": "ema", "state": {"updates": -1, "weights": []}}),
                      "average: must be {decay, updates, weights}"),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_checkpoint_field_is_one_line(cli, finished, tmp_path, name):
    change, expected = CRAFTED[name]
    run = crafted(finished, tmp_path, name, change)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    message = one_line(cli("resume", run, "train.max_steps=9", ok=False))
    assert expected in message, message
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_a_plain_pickle_is_one_line_without_a_warning(tmp_path):
    import pickle

    for protocol in (2, 4):
        path = tmp_path / f"p{protocol}.pt"
        path.write_bytes(pickle.dumps({"format": "seqcli-checkpoint"}, protocol=protocol))
        result = subprocess.run([sys.executable, "-m", "seqcli", "sample", str(path)], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "plain pickle file, not a" in result.stderr


def test_resume_refuses_data_that_is_now_a_fifo_or_a_folder(finished, corpus):
    corpus.unlink()
    os.mkfifo(corpus)
    result = subprocess.run([sys.executable, "-m", "seqcli", "resume", str(finished), "train.max_steps=9"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"the run's dataset cannot be read again: dataset.path: not a regular file: {corpus}" in result.stderr
    corpus.unlink()
    corpus.mkdir()
    result = subprocess.run([sys.executable, "-m", "seqcli", "resume", str(finished), "train.max_steps=9"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "not a regular file" in result.stderr


# -- every number and structure a user gives is bounded -------------------------------------------

HUGE = "9" * 5000


def test_integers_of_thousands_of_digits_are_one_line(cli, recipe, reverser, tmp_path):
    text = recipe.read_text().replace("max_steps: 20", f"max_steps: {HUGE}")
    big = tmp_path / "big.yaml"
    big.write_text(text)
    line = text.splitlines().index(f"  max_steps: {HUGE}") + 1
    assert f"{big}:{line}: an integer of 5,000 digits" in one_line(cli("run", big, ok=False))
    assert "an integer of 5,000 digits" in one_line(cli("run", recipe, f"train.max_steps={HUGE}", ok=False))
    assert "an integer of 5,000 digits" in one_line(cli("sample", reverser, "--beam-size", HUGE, ok=False))
    space = tmp_path / "space.yaml"
    space.write_text(f"model.hidden_size: choice(8, {HUGE})\n")
    pytest.importorskip("optuna")
    assert "an integer of 5,000 digits" in one_line(cli("sweep", recipe, "--space", space, ok=False))
    assert "an integer of 5,000 digits" in one_line(cli("sweep", recipe, f"model.hidden_size=int(1, {HUGE})",
                                                        ok=False))
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(f'{{"input": "a b", "label": {HUGE if i == 7 else i % 2}}}\n' for i in range(20)))
    result = cli("run", "digits", "dataset={name: labeled, path: " + str(data) + "}", "task.name=classify",
                 "train.max_steps=2", "sample={}", "--run-dir", tmp_path / "r", ok=False)
    assert f"{data}:8: a number of more than 4,300 digits" in one_line(result)


def test_betas_are_two_numbers(cli, recipe):
    message = one_line(cli("recipes", "validate", recipe, "train.optimizer.betas=[0.9]", ok=False))
    assert "train.optimizer.betas: must be a list of 2 values" in message and "got 1 value" in message


def test_an_error_names_what_the_user_wrote_not_what_threads_added(cli, recipe, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(recipe.read_text().replace("train:\n  batch_size: 8", "train: 8\nignored:\n  batch_size: 8"))
    result = cli("run", broken, "--threads", "1", ok=False)
    assert result.exit_code == 2 and "train.threads" not in result.stderr
    assert f"{broken}:" in result.stderr and "train: must be a mapping" in result.stderr


def test_hostile_data_shapes_are_one_line(cli, tmp_path):
    deep_json = tmp_path / "deep.jsonl"
    deep_json.write_text('{"source": "ab", "target": "ba"}\n' * 5 + '{"source": ' + "[" * 100_000 + "]" * 100_000
                         + ', "target": "x"}\n')
    message = one_line(cli("run", "reverse", f"dataset={{name: pairs, path: {deep_json}}}", "train.max_steps=2",
                           "--run-dir", tmp_path / "r1", ok=False))
    assert f"{deep_json}:6: JSON nested too deeply" in message
    wide = tmp_path / "wide.csv"
    wide.write_text("source,target\n" + "ab,ba\n" * 5 + "a" * 200_000 + ",x\n")
    message = one_line(cli("run", "reverse", f"dataset={{name: pairs, path: {wide}}}", "train.max_steps=2",
                           "--run-dir", tmp_path / "r2", ok=False))
    assert f"{wide}:7: cannot read this CSV line (field larger than field limit" in message
    nulls = tmp_path / "null.jsonl"
    nulls.write_text('{"source": "ab", "target": "ba"}\n' * 5 + '{"source": null, "target": "x"}\n')
    message = one_line(cli("run", "reverse", f"dataset={{name: pairs, path: {nulls}}}", "train.max_steps=2",
                           "--run-dir", tmp_path / "r3", ok=False))
    assert f"{nulls}:6: the source is null, not text" in message
    labels = tmp_path / "null-labeled.jsonl"
    labels.write_text('{"input": "a b", "label": "x"}\n' * 5 + '{"input": null, "label": "y"}\n')
    message = one_line(cli("run", "digits", f"dataset={{name: labeled, path: {labels}}}", "task.name=classify",
                           "train.max_steps=2", "sample={}", "--run-dir", tmp_path / "r4", ok=False))
    assert f"{labels}:6: the input is null, not text" in message


def test_a_50_mb_input_line_is_one_line(cli, reverser, tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "w") as f:
        f.write("abc\n")
        f.write("a" * (50 << 20) + "\n")
    message = one_line(cli("sample", reverser, "--input-file", huge, "-o", tmp_path / "o.txt", ok=False))
    assert f"{huge}:2: a line of more than 1,048,576 bytes" in message
    assert not (tmp_path / "o.txt").exists()  # the input is read through before anything is written


def test_a_cache_entry_that_is_a_fifo_is_rebuilt_not_waited_on(corpus, tmp_path):
    import signal

    from seqcli.data.datasets.text import TextDataset

    first = TextDataset(path=str(corpus)).load()
    [entry] = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    (entry / "meta.json").unlink()
    os.mkfifo(entry / "meta.json")
    signal.alarm(60)  # a hang fails the test instead of stalling the suite
    try:
        again = TextDataset(path=str(corpus)).load()
    finally:
        signal.alarm(0)
    assert torch.equal(again.splits["train"], first.splits["train"]) and not again.info.get("cached")


def test_too_many_threads_in_the_environment_is_one_line(reverser):
    result = subprocess.run([sys.executable, "-m", "seqcli", "sample", str(reverser), "-i", "abc"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "99999"})
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: OMP_NUM_THREADS=99999: at most 1024 compute threads; set it lower, or give --threads\n"


# -- data means what it says ----------------------------------------------------------------------

def test_a_conll_line_with_an_extra_column_is_an_error(tmp_path):
    from seqcli.data.datasets.conll import ConllDataset
    from seqcli.errors import DataError

    path = tmp_path / "c.conll"
    path.write_text("The DT\ncat NN\n\nsat VBD extra\n")
    with pytest.raises(DataError, match=r"c.conll:4: 3 columns, the file's first token line .*c.conll:1\) has 2"):
        ConllDataset(path=str(path)).read(str(path))


def test_subword_text_splits_lines_at_newlines_only():
    pytest.importorskip("tokenizers")
    from seqcli import vocab as V
    from seqcli.data.datasets.text import encode_subword

    text = "one line\u2028with a separator\x0cand a form feed\r\nsecond line\n"
    vocab = V.subword_vocab(V.lines(text), "bpe", 60, lines=True)
    ids = encode_subword(text, vocab).tolist()
    assert ids.count(vocab.eos) == 2  # two lines: one <eos> each
    assert vocab.decode(ids) == "one line\u2028with a separator\x0cand a form feed\nsecond line\n"


def test_a_unigram_vocabulary_too_small_for_the_characters_is_one_line(cli, corpus, tmp_path):
    pytest.importorskip("tokenizers")
    message = one_line(cli("run", "char-lm", f"dataset={{name: text, path: {corpus}, level: unigram, vocab_size: 8}}",
                           "train.max_steps=2", "--run-dir", tmp_path / "r", ok=False))
    assert "dataset.vocab_size 8: a unigram vocabulary holds every character" in message
    assert not (tmp_path / "r").exists()


def test_a_unigram_run_without_cache_resumes_with_its_own_vocabulary(cli, corpus, tmp_path, monkeypatch):
    pytest.importorskip("tokenizers")
    from seqcli import vocab as V
    from seqcli.train import checkpoint

    data = f"dataset={{name: text, path: {corpus}, level: unigram, vocab_size: 60, cache: false}}"
    cli("run", "char-lm", data, *TINY, "--run-dir", tmp_path / "run")
    stored = checkpoint.load(tmp_path / "run", "last").fields["text"]
    real = V.train_subword
    monkeypatch.setattr(V, "train_subword", lambda texts, level, size, *a, **k: real(texts, level, size - 5, *a, **k))
    cli("resume", tmp_path / "run", "train.max_steps=9")  # learnt anew it differs; the run keeps its own
    assert checkpoint.load(tmp_path / "run", "last").fields["text"] == stored
    corpus.write_text(corpus.read_text() + "new words zebra quartz\n")
    message = one_line(cli("resume", tmp_path / "run", "train.max_steps=12", ok=False))
    assert "the data files changed since the run started" in message


def test_invalid_utf8_on_the_command_line_is_one_line(cli, finished):
    assert "--prime: not valid UTF-8 (byte 0xff)" in one_line(cli("sample", finished, "--prime", "ab\udcff", ok=False))


def test_invalid_utf8_prime_for_a_subword_model(cli, corpus, tmp_path):
    pytest.importorskip("tokenizers")
    cli("run", "char-lm", f"dataset={{name: text, path: {corpus}, level: bpe, vocab_size: 60}}", *TINY,
        "--run-dir", tmp_path / "bpe")
    message = one_line(cli("sample", tmp_path / "bpe", "--prime", "the \udcfe", ok=False))
    assert "--prime: not valid UTF-8 (byte 0xfe)" in message


def test_a_model_whose_scores_are_nan_skips_its_sample_in_one_line(cli, recipe, tmp_path, monkeypatch):
    from seqcli.tasks import language_model

    real = language_model.RNNLanguageModel._logits

    def nan_scores(self, h):
        return real(self, h) * float("nan") if not self.training else real(self, h)

    monkeypatch.setattr(language_model.RNNLanguageModel, "_logits", nan_scores)
    result = cli("run", recipe, *TINY, "sample.temperature=1.0", "--run-dir", tmp_path / "run")
    assert "sample skipped: the model's scores are NaN or infinite" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "the model's scores are NaN" in one_line(cli("sample", tmp_path / "run", ok=False), code=1)


# -- what resume --force records is what trains ----------------------------------------------------

def optimizer_groups(run):
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["optimizer"]["param_groups"]


def test_resume_force_applies_a_new_learning_rate_and_weight_decay(cli, finished):
    assert optimizer_groups(finished)[0]["lr"] == pytest.approx(0.01)
    result = cli("resume", finished, "train.max_steps=9", "train.optimizer.lr=0.0001",
                 "train.optimizer.weight_decay=0.25", "--force")
    assert "train.optimizer.lr: 0.01 -> 0.0001, applied from this step" in result.stdout
    group = optimizer_groups(finished)[0]
    assert group["lr"] == pytest.approx(0.0001) and group["weight_decay"] == 0.25
    assert (finished / "recipe.yaml").read_text().count("lr: 0.0001") == 1


def test_resume_force_scales_a_scheduled_rate_and_keeps_the_schedule(cli, recipe, tmp_path):
    cosine = ["train.scheduler.name=cosine", "train.max_steps=12"]
    runs = {}
    for name, extra in (("same", []), ("halved", ["train.optimizer.lr=0.005"])):
        run = tmp_path / name
        cli("run", recipe, *TINY, *cosine, "train.max_steps=6", "--run-dir", run)
        cli("resume", run, *cosine, "train.max_steps=9", *extra, "--force")
        runs[name] = optimizer_groups(run)[0]["lr"]
    assert 0 < runs["same"] < 0.01 and runs["halved"] == pytest.approx(runs["same"] / 2, rel=1e-9)


def test_resume_force_with_another_optimizer_rebuilds_it(cli, finished):
    result = cli("resume", finished, "train.max_steps=9", "train.optimizer={name: sgd, lr: 0.05}", "--force")
    assert "adam -> sgd: the new optimizer starts with a fresh state" in result.stdout
    group = optimizer_groups(finished)[0]
    assert "momentum" in group and "betas" not in group and group["lr"] == pytest.approx(0.05)


def test_the_standard_input_is_never_the_output(reverser, tmp_path):
    given = tmp_path / "in.txt"
    given.write_text("abc\ncab\n")
    with open(given, "rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "seqcli", "sample", str(reverser), "--input-file", "-", "-o",
                                 str(given), "--force"], stdin=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "is the standard input; writing it would destroy the input" in result.stderr
    assert given.read_text() == "abc\ncab\n"


# -- seqcli average never writes into a run's checkpoints --------------------------------------------

def test_average_refuses_a_runs_own_checkpoint_folder_and_takes_a_resumed_runs_checkpoints(cli, tmp_path):
    run = tmp_path / "run"
    cli("run", "reverse", "train.max_steps=4", "train.eval_every=2", "train.keep_checkpoints=3", "model.hidden_size=16",
        "--run-dir", run)
    last = (run / "checkpoints" / "last.pt").read_bytes()
    for name in ("last.pt", "best.pt", "mine.pt"):
        message = one_line(cli("average", run, "--last", 2, "-o", run / "checkpoints" / name, "--force", ok=False))
        assert "a run's own checkpoint folder" in message and "averaged.pt" in message
    assert (run / "checkpoints" / "last.pt").read_bytes() == last
    cli("resume", run, "train.max_steps=6", "train.eval_every=2", "train.keep_checkpoints=3")  # a documented resume
    out = cli("average", run, "--last", 3, "-o", run / "averaged.pt").stdout
    assert "the mean of the checkpoints of steps 2, 4, 6" in out
