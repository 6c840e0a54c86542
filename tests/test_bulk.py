"""`seqcli sample --input-file`: batches, input order, progress, a kill and `--continue`."""

import random
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from seqcli.cli import app


@pytest.fixture(scope="module")
def reverser(tmp_path_factory):
    run = tmp_path_factory.mktemp("bulk") / "run"
    result = CliRunner().invoke(app, ["run", "reverse", "train.max_steps=150", "train.eval_every=150",
                                      "train.batch_size=32", "model.hidden_size=32", "dataset.train_size=2000",
                                      "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    return run


def words(n, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(n)]


def test_streamed_outputs_are_in_input_order_and_match_one_at_a_time(cli, reverser, tmp_path):
    inputs = words(50)
    path = tmp_path / "in.txt"
    path.write_text("\n".join(inputs[:20]) + "\n\n" + "\n".join(inputs[20:]) + "\n")  # a blank line is skipped
    out = tmp_path / "out.txt"
    result = cli("sample", reverser, "--input-file", path, "-o", out, "--beam-size", "3", "--batch-size", "4")
    streamed = out.read_text().splitlines()
    assert len(streamed) == 50 and "wrote 50 outputs" in result.stderr
    direct = cli("sample", reverser, *[a for text in inputs[:7] for a in ("--input", text)], "--beam-size", "3")
    assert direct.stdout.splitlines() == streamed[:7]
    to_stdout = cli("sample", reverser, "--input-file", path, "--beam-size", "3", "--batch-size", "64")
    assert to_stdout.stdout.splitlines() == streamed  # batch size and grouping change nothing


def test_a_killed_prediction_continues_to_the_same_file(reverser, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(words(4000, seed=1)) + "\n")
    whole, cut = tmp_path / "whole.txt", tmp_path / "cut.txt"
    args = [sys.executable, "-m", "seqcli", "sample", str(reverser), "--input-file", str(path), "--beam-size", "2",
            "--batch-size", "16"]
    subprocess.run(args + ["-o", str(whole)], check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(args + ["-o", str(cut)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and (not cut.exists() or cut.stat().st_size < 500):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = cut.read_text().count("\n")
    assert 0 < written < 4000  # killed part-way: the lines already written are kept
    with open(cut, "a") as f:
        f.write("partial ou")  # as if killed in the middle of a line
    result = subprocess.run(args + ["-o", str(cut), "--continue"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    import re

    kept = int(re.search(r"after the ([\d,]+) it had", result.stderr).group(1).replace(",", ""))
    assert written - 16 * 8 <= kept <= written  # lines the record vouches for (a kill may beat its update)
    assert cut.read_text() == whole.read_text()


def test_bulk_mistakes_are_one_line(cli, reverser, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("abc\ndef\nab#c\n")
    result = cli("sample", reverser, "--input-file", path, "-o", tmp_path / "o.txt", ok=False)
    assert result.exit_code == 2 and f"{path}:3: has tokens the model never saw in training: '#'" in result.stderr
    assert cli("sample", reverser, "--input-file", path, "--continue", ok=False).exit_code == 2
    out = tmp_path / "o2.txt"
    out.write_text("x\n")
    result = cli("sample", reverser, "--input-file", path, "-o", out, ok=False)
    assert "already exists; pass --force to replace it, or --continue" in result.stderr
    result = cli("sample", reverser, "--input-file", path, "-o", out, "--continue", "--force", ok=False)
    assert "choose one" in result.stderr
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"abc\n\xff\xfe\n")
    result = cli("sample", reverser, "--input-file", binary, ok=False)
    assert result.exit_code == 2 and f"{binary}:2: not valid UTF-8" in result.stderr


def test_a_run_that_fails_before_its_first_outputs_leaves_no_output(cli, reverser, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("ab#c\nabc\n")  # the first group fails
    out = tmp_path / "o.txt"
    result = cli("sample", reverser, "--input-file", path, "-o", out, ok=False)
    assert result.exit_code == 2 and f"{path}:1: has tokens the model never saw" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # no empty output, no record beside it
    out.write_text("an earlier result\n")
    result = cli("sample", reverser, "--input-file", path, "-o", out, "--force", ok=False)
    assert result.exit_code == 2 and out.read_text() == "an earlier result\n"  # replaced only by outputs


def test_the_first_bad_input_is_named_whatever_the_task_raises(cli, reverser, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("abc\nabcdefg#hij\nde\nfed\n#\n")  # line 2 is bad, and so is the shorter line 5
    result = cli("sample", reverser, "--input-file", path, ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}:2: has tokens the model never saw in training: '#'\n"
    from seqcli.tasks.seq2seq import Seq2Seq

    real = Seq2Seq.encode_user_input

    def fails_on_fed(self, text, fields, where, copying=False):  # a task's own bug, on one input
        if text == "fed":
            raise IndexError("list index out of range")
        return real(self, text, fields, where, copying)

    monkeypatch.setattr(Seq2Seq, "encode_user_input", fails_on_fed)
    path.write_text("abc\nde\nfed\nab\n")
    result = cli("sample", reverser, "--input-file", path, ok=False)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}:3: the task failed on this input: IndexError: list index out of "
                             f"range\n")


def test_progress_in_a_pipe_is_a_plain_line(cli, reverser, tmp_path, monkeypatch):
    from seqcli import predict

    monkeypatch.setattr(predict, "PLAIN_EVERY_S", 0.0)
    path = tmp_path / "in.txt"
    path.write_text("\n".join(words(30)) + "\n")
    result = cli("sample", reverser, "--input-file", path, "-o", tmp_path / "o.txt", "--batch-size", "8")
    assert "sample: 30/30 inputs," in result.stderr and "inputs/s" in result.stderr


def test_json_outputs_stream_and_continue_only_as_they_were_written(cli, reverser, tmp_path):
    """`--json`: a line of JSON per input (its input, text, hypotheses), streamed to `-o`
    like the text; `--continue` appends to a file only in the form it was written in."""
    import json

    path, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    inputs = words(40, seed=4)
    path.write_text("\n".join(inputs) + "\n")
    cli("sample", reverser, "--input-file", path, "-o", out, "--json", "--batch-size", "8")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    texts = cli("sample", reverser, "--input-file", path).stdout.splitlines()
    assert [line["input"] for line in lines] == inputs and [line["text"] for line in lines] == texts
    assert all(line["hypotheses"][0]["output"] == line["text"] for line in lines)
    refused = cli("sample", reverser, "--input-file", path, "-o", out, "--continue", ok=False)
    assert refused.exit_code == 2 and "was written as JSON lines; give --json with --continue" in refused.stderr
    assert cli("sample", reverser, "--input-file", path, "-o", out, "--continue", "--json").exit_code == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines
