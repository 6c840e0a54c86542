"""The command line as a user meets it: run, sample, evaluate, recipes, plugins, errors."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import TINY
from seqcli.recipe.load import bundled


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_writes_a_complete_run_directory(cli, recipe, tmp_path):
    result = cli("run", recipe, "train.max_steps=60", "train.eval_every=20", "--run-dir", tmp_path / "run")
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"recipe.yaml", "metrics.jsonl", "checkpoints", "samples.txt"}
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    valid = [m for m in read_metrics(run) if m["split"] == "valid"]
    assert [m["step"] for m in valid] == [20, 40, 60]
    assert valid[-1]["loss"] < valid[0]["loss"] - 0.3, valid  # validation loss clearly falls
    assert "bpc" in valid[0] and "perplexity" in valid[0]
    train = [m for m in read_metrics(run) if m["split"] == "train"]
    assert len(train) == 12 and all(m["tokens_per_s"] >= 0 for m in train)
    # plain progress lines when not on a terminal
    assert "step 5/60  loss" in result.stdout and "eval  step 20: valid loss" in result.stdout
    assert "max_steps: 60" in (run / "recipe.yaml").read_text()  # the resolved recipe, overrides applied
    assert (run / "samples.txt").read_text().startswith("the ")


def test_sample_and_evaluate_need_only_the_checkpoint(cli, recipe, corpus, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run")
    os.remove(corpus)
    os.remove(recipe)
    first = cli("sample", tmp_path / "run", "--prime", "the ", "--length", "30", "--seed", "1", "--top-k", "5")
    again = cli("sample", tmp_path / "run", "--prime", "the ", "--length", "30", "--seed", "1", "--top-k", "5")
    assert first.stdout == again.stdout and first.stdout.startswith("the ") and len(first.stdout) == 35
    two = cli("sample", tmp_path / "run" / "checkpoints" / "last.pt", "-n", "10", "-s", "2", "--greedy")
    first_sample, second_sample = two.stdout.split("\n\n")  # samples are separated by a blank line
    assert first_sample.startswith("the ") and len(first_sample) == 14  # the recipe's prime + 10 characters
    assert first_sample + "\n" == second_sample  # greedy: both samples the same
    scored = tmp_path / "other.txt"
    scored.write_text("the cat sat on the mat.\n" * 20)
    out = json.loads(cli("evaluate", tmp_path / "run", "--file", scored, "--json").stdout)
    assert out["split"] == str(scored) and out["loss"] > 0 and out["step"] == 20


def test_evaluate_rereads_the_recorded_dataset(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run")
    out = json.loads(cli("evaluate", tmp_path / "run", "--split", "valid", "--json").stdout)
    valid = [m for m in read_metrics(tmp_path / "run") if m["split"] == "valid"]
    best = min(valid, key=lambda m: m["loss"])
    assert out["loss"] == pytest.approx(best["loss"], rel=1e-5)
    table = cli("evaluate", tmp_path / "run").stdout
    assert "loss" in table and "bpc" in table and "test" in table
    bad = cli("evaluate", tmp_path / "run", "--split", "dev", ok=False)
    assert bad.exit_code == 2 and "no split 'dev' (it has: train, valid, test)" in bad.stderr


def test_existing_run_directory_is_never_overwritten(cli, recipe, tmp_path):
    run = tmp_path / "run"
    cli("run", recipe, "--run-dir", run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = cli("run", recipe, "--run-dir", run, ok=False)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: run directory {run} already exists and is not empty; "
                                     f"choose another --run-dir, or continue it with --resume (nothing in it was changed)")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_default_run_directory_is_new_each_time(cli, recipe, tmp_path):
    cli("run", recipe)
    cli("run", recipe)
    assert len(list((tmp_path / "runs").iterdir())) == 2


SHRINK = ["model.embedding_size=16", "model.hidden_size=16", "model.num_layers=1", "train.batch_size=8",
          "train.seq_len=16", "train.max_steps=6", "train.eval_every=3", "train.log_every=3", "train.eval_batches=2",
          "sample.length=20", "dataset.train_size=64", "dataset.valid_size=16", "dataset.test_size=16",
          "dataset.max_files=10"]


@pytest.mark.parametrize("name", sorted(bundled()))
def test_bundled_recipes_run_with_tiny_overrides(cli, name, tmp_path):
    from seqcli.recipe.resolve import load_recipe

    if name.startswith("digits"):
        pytest.importorskip("sklearn")
    resolved = load_recipe(name).to_data()

    def has(key):
        section, _, rest = key.partition(".")
        return rest.split("=")[0] in resolved.get(section, {})

    cli("run", name, *[o for o in SHRINK if has(o)], "--run-dir", tmp_path / name)
    assert (tmp_path / name / "checkpoints" / "best.pt").is_file()
    if resolved["sample"].get("inputs", True):  # tasks that need inputs sample the recipe's own
        seeded = ["--seed", "1"] if "seed" in resolved["sample"] else []  # a 2-step model's draws: fixed
        assert cli("sample", tmp_path / name, *seeded).stdout.strip()


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_other_cells_and_word_level(cli, recipe, tmp_path, cell):
    cli("run", recipe, f"model.cell.name={cell}", "dataset.level=word", "sample.prime=the cat", "--run-dir", tmp_path / "r")
    out = cli("sample", tmp_path / "r", "--length", "8", "--seed", "0").stdout
    assert out.startswith("the cat") and len(out.split()) >= 5


def test_word_level_model_on_separate_files(cli, tmp_path):
    from conftest import make_corpus

    for name, seed in (("train", 0), ("valid", 1), ("test", 2)):
        (tmp_path / f"{name}.txt").write_text(make_corpus(300 if name == "train" else 40, seed))
    result = cli("run", "word-lm", *TINY, "train.max_steps=100", "train.eval_every=50", "train.optimizer={name: adam, lr: 0.02}",
                 "dataset={name: text, level: word, train: train.txt, valid: valid.txt, test: test.txt}",
                 "sample.prime=the dog", "--run-dir", tmp_path / "words")
    assert "tokens train 2,163 / valid 289 / test 289; text vocabulary 23" in result.stdout
    valid = [m for m in read_metrics(tmp_path / "words") if m["split"] == "valid"]
    # 80 equally likely sentences of about 7 tokens: the best possible perplexity is about 1.85
    assert valid[-1]["perplexity"] < 2.5, valid
    scored = json.loads(cli("evaluate", tmp_path / "words", "--split", "test", "--json").stdout)
    assert scored["perplexity"] < 2.5 and "bpc" not in scored
    assert cli("sample", tmp_path / "words", "--length", "12", "--seed", "2").stdout.startswith("the dog")


ERRORS = [
    (["run", "missing.yaml"], "error: missing.yaml: no such file, and no bundled recipe of that name"),
    (["run", "char-lmm"], "error: char-lmm: no such file, and no bundled recipe of that name (did you mean 'char-lm'?)"),
    (["run", "char-lm", "model.cell.name=lstmm"], "error: override 'model.cell.name=lstmm': model.cell.name: unknown cell 'lstmm' (did you mean 'lstm'?); installed cells: gru, lstm"),
    (["run", "char-lm", "dataset.name=txt"], "error: override 'dataset.name=txt': dataset.name: unknown dataset 'txt' (did you mean 'text'?); installed datasets: conll, digits"),
    (["run", "char-lm", "model.hidden_size=0"], "error: override 'model.hidden_size=0': model.hidden_size: must be >= 1 and <= 65536, got 0"),
    (["run", "char-lm", "model.hidden_size=big"], "error: override 'model.hidden_size=big': model.hidden_size: must be an integer, got 'big'"),
    (["run", "char-lm", "dataset.path=nope.txt"], "error: override 'dataset.path=nope.txt': dataset.path: file not found: nope.txt"),
    (["sample", "nowhere"], "error: nowhere: no such checkpoint file or run directory"),
]


@pytest.mark.parametrize("args,message", ERRORS)
def test_user_errors_are_one_line_with_exit_2(cli, args, message):
    result = cli(*args, ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr + result.stdout


def test_bad_yaml_file(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: {name: text\nmodel: [\n")
    result = cli("run", bad, ok=False)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {bad}:") and "invalid YAML" in result.stderr


def test_bad_checkpoints_are_refused(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run")
    good = (tmp_path / "run" / "checkpoints" / "best.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    result = cli("sample", truncated, ok=False)
    assert result.exit_code == 2 and result.stderr == f"error: {truncated}: cannot read checkpoint: the file is truncated or corrupt\n"
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    result = cli("sample", foreign, ok=False)
    assert result.stderr == f"error: {foreign}: not a seqcli checkpoint\n"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert "no best checkpoint in this directory" in cli("sample", empty_dir, ok=False).stderr


class Payload:
    """An object whose unpickling would create a file: it must never run."""

    def __reduce__(self):
        return (open, (os.path.join(os.getcwd(), "pwned"), "w"))


def test_checkpoint_carrying_pickled_code_is_refused_and_never_runs(cli, tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "seqcli-checkpoint", "model": Payload()}, evil)
    result = cli("sample", evil, ok=False)
    assert result.exit_code == 2
    assert "holds pickled Python objects, which seqcli never loads" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_non_finite_loss_stops_the_run_and_keeps_the_good_checkpoint(cli, recipe, tmp_path, monkeypatch):
    from conftest import poison_losses

    poison_losses(monkeypatch, {15}, float("nan"))
    result = cli("run", recipe, "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: step 15: the loss is nan;")
    assert torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)["step"] == 10


def test_device_that_is_not_here(cli, recipe, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = cli("run", recipe, "train.device=cuda", "--run-dir", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and result.stderr == "error: device 'cuda': no such CUDA device here (use auto or cpu)\n"
    cli("run", recipe, "--run-dir", tmp_path / "run2")
    result = cli("sample", tmp_path / "run2", "--device", "cuda:3", ok=False)
    assert result.exit_code == 2 and "no such CUDA device" in result.stderr


def test_debug_shows_the_traceback(cli):
    result = cli("--debug", "run", "missing.yaml", ok=False)
    assert result.exit_code != 0 and result.exception is not None
    assert type(result.exception).__name__ == "SeqcliError"


def test_unknown_sample_option_values(cli, recipe, tmp_path):
    cli("run", recipe, "--run-dir", tmp_path / "run")
    result = cli("sample", tmp_path / "run", "--temperature", "-1", ok=False)
    assert result.exit_code == 2 and result.stderr.startswith("error: --temperature: must be >= 0")
    result = cli("sample", tmp_path / "run", "--prime", "Zebra", ok=False)
    assert "the prime has characters the model never saw in training: 'Z'" in result.stderr


def test_recipes_list_show_copy_validate(cli, tmp_path):
    listing = cli("recipes", "list").stdout
    assert "char-lm" in listing and "word-lm" in listing
    assert "hidden_size: 256" in cli("recipes", "show", "char-lm").stdout
    mine = tmp_path / "my.yaml"
    cli("recipes", "copy", "char-lm", mine)
    assert mine.read_text() == cli("recipes", "show", "char-lm").stdout
    mine.write_text(mine.read_text() + "# my notes\n")
    refused = cli("recipes", "copy", "char-lm", mine, ok=False)
    assert refused.exit_code == 2 and "already exists; pass --force" in refused.stderr
    assert mine.read_text().endswith("# my notes\n")
    assert cli("recipes", "validate", mine).stdout.startswith(f"ok: {mine}")
    mine.write_text(mine.read_text().replace("hidden_size", "hiden_size").replace("max_steps: 2000", "max_steps: -1"))
    bad = cli("recipes", "validate", mine, ok=False)
    lines = bad.stderr.splitlines()
    assert bad.exit_code == 2 and len(lines) == 2
    assert lines[0].startswith(f"error: {mine}:7: model.hiden_size: unknown key (did you mean 'hidden_size'?)")
    assert lines[1].startswith(f"error: {mine}:13: train.max_steps: must be >= 1")


def test_plugins_list_shows_the_builtins(cli):
    out = cli("plugins", "list").stdout
    for name in ("lstm", "gru", "rnn", "language_model", "text"):
        assert any(line.split()[1:2] == [name] and line.rstrip().endswith("ok") for line in out.splitlines()), out


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_help_does_not_import_torch():
    code = ("import sys\nfrom seqcli.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = run_python(code)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "seqcli", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("seqcli ")


def test_the_command_makes_idle_compute_threads_sleep_unless_the_user_chose():
    code = ("import os, sys\nsys.argv = ['seqcli', '--version']\nfrom seqcli.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules, os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert chosen.stdout.splitlines()[-1] == "False 1000", chosen.stderr  # set before torch starts
    assert run_python(code, GOMP_SPINCOUNT="5").stdout.splitlines()[-1] == "False 5"
    kept = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "OMP_WAIT_POLICY": "PASSIVE"})
    assert kept.stdout.splitlines()[-1] == "False None"
