"""`seqcli sweep`: spaces checked like recipes, trials as run folders, pruning, a kill and
`sweep resume`, two workers on one study, and the mistakes a user makes."""

import signal
import subprocess
import sys
import time

import pytest
import yaml

optuna = pytest.importorskip("optuna")

FAST = ["train.max_steps=30", "train.eval_every=10", "train.log_every=10"]


def study_of(folder):
    from seqcli import sweep as S

    spec = S.Spec.load(folder)
    return S.open_study(spec, folder, create=False)


def test_a_sweep_trains_run_folders_and_keeps_the_best_recipe(cli, recipe, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("train.optimizer.lr: loguniform(1e-3, 3e-2)\nmodel.hidden_size: choice(16, 32)\n")
    result = cli("sweep", recipe, "--space", space, *FAST, "--trials", "4", "--pruner", "none", "--out", tmp_path / "s")
    lines = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4 and all("complete: loss" in line for line in lines), result.stdout
    assert "finished 4, pruned 0, failed 0, running 0" in result.stdout and "importance:" in result.stdout
    trials = study_of(tmp_path / "s").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    best = min(trials, key=lambda t: t.value)
    stored = yaml.safe_load((tmp_path / "s" / "best.yaml").read_text())
    assert stored == yaml.safe_load((tmp_path / "s" / f"trial-{best.number:04d}" / "recipe.yaml").read_text())
    assert stored["model"]["hidden_size"] in (16, 32) and 1e-3 <= stored["train"]["optimizer"]["lr"] <= 3e-2
    cli("sample", tmp_path / "s" / "trial-0002", "--length", "10")  # every trial is an ordinary run
    cli("run", tmp_path / "s" / "best.yaml", "train.max_steps=5", "--run-dir", tmp_path / "longer")
    shown = cli("sweep", "show", tmp_path / "s", "-o", tmp_path / "sweep.png").stdout
    assert f"best: trial {best.number}" in shown and (tmp_path / "sweep.png").stat().st_size > 10_000


def test_pruning_stops_bad_trials_early(cli, recipe, tmp_path):
    result = cli("sweep", recipe, "train.optimizer.lr=choice(0.02, 0.00001)", *FAST, "--trials", "6",
                 "--sampler", "random", "--seed", "1", "--pruner-warmup", "1", "--out", tmp_path / "s")
    trials = study_of(tmp_path / "s").get_trials()
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(t.last_step < 30 for t in pruned), result.stdout
    assert all(t.params["train.optimizer.lr"] == 1 for t in pruned)  # the tiny rate (choice index 1)
    assert f"pruned {len(pruned)}" in result.stdout
    assert any(len(t.intermediate_values) == 1 for t in pruned)  # judged at its first evaluation


def test_no_trial_is_pruned_before_its_warmup_evaluation(cli, recipe, tmp_path):
    result = cli("sweep", recipe, "train.optimizer.lr=choice(0.02, 0.00001)", "train.max_steps=40",
                 "train.eval_every=10", "train.log_every=10", "--trials", "6", "--sampler", "random", "--seed", "1",
                 "--pruner-warmup", "3", "--out", tmp_path / "s")
    assert "pruner median from evaluation 3" in result.stdout
    pruned = [t for t in study_of(tmp_path / "s").get_trials() if t.state.name == "PRUNED"]
    assert pruned and all(len(t.intermediate_values) == 3 for t in pruned), result.stdout  # at the third, not before


def test_a_killed_sweep_resumes_with_every_trial_finished_once(recipe, tmp_path):
    folder = tmp_path / "s"
    args = [sys.executable, "-m", "seqcli", "sweep", str(recipe), "train.optimizer.lr=loguniform(1e-3, 3e-2)",
            "train.max_steps=60", "train.eval_every=10", "train.checkpoint_every=5", "--trials", "4",
            "--pruner", "none", "--out", str(folder)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (folder / "trial-0001" / "checkpoints" / "last.pt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(t.state.name == "RUNNING" for t in study_of(folder).get_trials())
    result = subprocess.run([sys.executable, "-m", "seqcli", "sweep", "resume", str(folder)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "trial 1: left running by a stopped sweep; resuming it" in result.stdout
    trials = study_of(folder).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state.name == "COMPLETE" for t in trials)
    import json

    steps = [json.loads(line)["step"] for line in (folder / "trial-0001" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "valid"]
    assert steps == [10, 20, 30, 40, 50, 60]  # resumed, not started again: each evaluation once


def test_two_workers_share_one_sqlite_study(recipe, tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [subprocess.Popen([sys.executable, "-m", "seqcli", "sweep", str(recipe),
                               "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "5", "--pruner", "none",
                               "--storage", db, "--study", "lr", "--out", str(tmp_path / name), "--threads", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="lr", storage=db)
    trials = study.get_trials()
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" for t in trials)
    folders = [p.name for name in ("a", "b") for p in (tmp_path / name).glob("trial-*")]
    assert sorted(folders) == [f"trial-{n:04d}" for n in range(5)]  # each trial once, in one of the folders


def test_parallel_trials_share_the_cores(cli, recipe, tmp_path):
    result = cli("sweep", recipe, "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "2",
                 "--parallel", "2", "--pruner", "none", "--out", tmp_path / "s")
    assert "finished 2," in result.stdout
    import os

    share = max(1, len(os.sched_getaffinity(0)) // 2)  # each of the 2 workers trains with its half
    for trial in sorted((tmp_path / "s").glob("trial-*")):
        assert yaml.safe_load((trial / "recipe.yaml").read_text())["train"]["threads"] == share


@pytest.mark.parametrize("argument, message", [
    ("model.dropout=uniform(1)", "uniform(low, high): a number between low and high; got 1 value"),
    ("model.dropout=normal(0, 1)", "unknown distribution 'normal'"),
    ("model.hiden_size=choice(16, 32)", "did you mean 'hidden_size'"),
    ("model.hidden_size=choice(a, b)", "model.hidden_size=a"),
    ("model.dropout=uniform(0, 1.5)", "model.dropout=1.5"),
    ("train.optimizer.lr=loguniform(0, 1)", "low must be > 0"),
])
def test_a_bad_space_is_one_line(cli, recipe, tmp_path, argument, message):
    result = cli("sweep", recipe, argument, "--out", tmp_path / "s", ok=False)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()  # nothing was made


def test_a_space_file_names_its_line_and_storage_problems_are_one_line(cli, recipe, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: uniform(0, 0.5)\nmodel.cells: choice(1, 2)\n")
    result = cli("sweep", recipe, "--space", space, ok=False)
    assert f"{space}:2: model.cells" in result.stderr
    result = cli("sweep", recipe, "model.dropout=uniform(0, 0.5)", "--storage", "sqlite:////no/such/dir/x.db",
                 "--out", tmp_path / "s", ok=False)
    assert result.exit_code == 2 and "--storage sqlite:////no/such/dir/x.db: cannot use it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_optuna_it_says_which_extra(cli, recipe, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = cli("sweep", recipe, "model.dropout=uniform(0, 0.5)", ok=False)
    assert result.exit_code == 2 and "pip install 'seqcli[sweep]'" in result.stderr


def one_line(result, code=2):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def set_trials(folder, n):
    from seqcli import sweep as S

    spec = S.Spec.load(folder)
    spec.trials = n
    spec.save(folder)


def test_a_trial_asked_for_but_never_tagged_is_replaced(cli, recipe, tmp_path):
    folder = tmp_path / "s"
    cli("sweep", recipe, "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "2", "--pruner", "none",
        "--out", folder)
    study_of(folder).ask()  # a worker died between asking for a trial and tagging it
    set_trials(folder, 3)
    cli("sweep", "resume", folder)
    trials = study_of(folder).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert trials[2].user_attrs["replaced"] is True  # it does not count toward --trials
    assert "asked for by a worker that stopped" in trials[2].user_attrs["note"]


def test_resumed_workers_never_repeat_the_values_of_earlier_trials(recipe, tmp_path):
    folder = tmp_path / "s"
    first = subprocess.run([sys.executable, "-m", "seqcli", "sweep", str(recipe),
                            "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "1", "--pruner", "none",
                            "--sampler", "random", "--out", str(folder)], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    set_trials(folder, 5)
    procs = [subprocess.Popen([sys.executable, "-m", "seqcli", "sweep", "resume", str(folder), "--threads", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    values = [t.params["train.optimizer.lr"] for t in study_of(folder).get_trials()]
    assert len(values) == 5 and len(set(values)) == 5, values


def test_best_yaml_is_rewritten_whenever_it_disagrees_with_the_study(cli, recipe, tmp_path):
    folder = tmp_path / "s"
    cli("sweep", recipe, "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "2", "--pruner", "none",
        "--out", folder)
    best = study_of(folder).best_trial.number
    expected = (folder / f"trial-{best:04d}" / "recipe.yaml").read_text()
    (folder / "best.yaml").write_text("stale: a kill came between the study's update and the copy\n")
    cli("sweep", "show", folder)
    assert (folder / "best.yaml").read_text() == expected
    (folder / "best.yaml").unlink()
    cli("sweep", "resume", folder)
    assert (folder / "best.yaml").read_text() == expected


def test_a_nan_objective_fails_its_trial_with_the_reason_and_the_sweep_goes_on(cli, recipe, tmp_path, monkeypatch):
    from seqcli.train import trainer

    real, calls = trainer.evaluate, [0]

    def nan_for_the_second_trial(task, model, data, split, config, options=None, **kw):
        metrics = real(task, model, data, split, config, options, **kw)
        calls[0] += 1
        return {**metrics, "loss": float("nan")} if 4 <= calls[0] <= 6 else metrics

    monkeypatch.setattr(trainer, "evaluate", nan_for_the_second_trial)
    result = cli("sweep", recipe, "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "3",
                 "--pruner", "none", "--out", tmp_path / "s")
    assert "trial 1 failed: no finite validation loss (NaN or infinite at every evaluation)" in result.stdout
    trials = study_of(tmp_path / "s").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert "no finite validation loss" in trials[1].user_attrs["note"]


def test_a_trial_that_raises_fails_alone(cli, recipe, tmp_path, monkeypatch):
    from seqcli.tasks.language_model import LanguageModel

    real, calls = LanguageModel.train_step, [0]

    def buggy(self, model, batch, carry):
        calls[0] += 1
        if calls[0] == 35:  # inside the second trial
            raise IndexError("a plugin's bug")
        return real(self, model, batch, carry)

    monkeypatch.setattr(LanguageModel, "train_step", buggy)
    result = cli("sweep", recipe, "train.optimizer.lr=loguniform(1e-3, 3e-2)", *FAST, "--trials", "3",
                 "--pruner", "none", "--out", tmp_path / "s")
    assert "trial 1 failed: IndexError: a plugin's bug" in result.stdout
    assert [t.state.name for t in study_of(tmp_path / "s").get_trials()] == ["COMPLETE", "FAIL", "COMPLETE"]


def test_an_exhausted_grid_ends_the_sweep_cleanly(cli, recipe, tmp_path):
    result = cli("sweep", recipe, "model.hidden_size=choice(8, 16)", *FAST, "--trials", "5", "--sampler", "grid",
                 "--pruner", "none", "--out", tmp_path / "s")
    assert "the grid is exhausted: every combination was tried (2 trials)" in result.stdout
    trials = study_of(tmp_path / "s").get_trials()
    assert sorted(t.params["model.hidden_size"] for t in trials) == [0, 1]


def test_storage_urls_are_checked_and_stored_absolute(cli, recipe, tmp_path):
    for url in ("sqlite:///:memory:", "sqlite://"):
        message = one_line(cli("sweep", recipe, "model.dropout=uniform(0, 0.5)", "--storage", url, "--out",
                               tmp_path / "m", ok=False))
        assert "a study in memory is lost when its worker stops" in message
    from seqcli import sweep as S

    cli("sweep", recipe, "model.dropout=uniform(0, 0.5)", *FAST, "--trials", "1", "--storage", "sqlite:///rel.db",
        "--out", tmp_path / "s")
    assert S.Spec.load(tmp_path / "s").storage == f"sqlite:///{tmp_path / 'rel.db'}"
    message = one_line(cli("sweep", recipe, "model.dropout=uniform(0, 0.3)", *FAST, "--storage", "sqlite:///rel.db",
                           "--out", tmp_path / "t", ok=False))
    assert "study 'sweep' exists there and searches something else (its space differs)" in message
    assert not (tmp_path / "t").exists()
    message = one_line(cli("sweep", recipe, "model.dropout=uniform(0, 0.5)", "train.max_steps=40",
                           "--storage", "sqlite:///rel.db", "--out", tmp_path / "u", ok=False))
    assert "(its recipe differs)" in message


@pytest.mark.parametrize("damage, expected", [
    ("", "damaged (not a mapping)"),
    ("recipe: x\noverrides: []\nparams: []\ntrials: many\n", "damaged (trials: must be an integer"),
    ("recipe: x\noverrides: []\nparams: [{key: a, kind: gauss, args: [1], origin: x}]\ntrials: 2\n",
     "damaged (params.0: x: a: unknown distribution 'gauss'"),
    ("recipe: x\noverrides: []\nparams: []\ntrials: 2\nsampler: annealing\n", "damaged (sampler: must be one of"),
    ("recipe: [unclosed\n", "damaged ("),
    ("recipe: x\noverrides: []\nparams: [3]\ntrials: 2\n", "damaged (params: must be a mapping, got 3)"),
    ("recipe: x\noverrides: []\nparams: [{key: a}]\ntrials: 2\n", "damaged (params.0: must be {key, kind, args, origin})"),
])
def test_a_damaged_sweep_yaml_is_one_line(cli, tmp_path, damage, expected):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sweep.yaml").write_text(damage)
    for command in ("resume", "show"):
        assert expected in one_line(cli("sweep", command, folder, ok=False))


def test_space_files_are_bounded_and_checked(cli, recipe, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: uniform(0, 0.5)\nmodel.dropout: uniform(0, 0.3)\n")
    assert f"{space}:2: model.dropout: duplicate key (also on line 1)" in one_line(
        cli("sweep", recipe, "--space", space, ok=False))
    assert "--space: /dev/zero: cannot read it" in one_line(cli("sweep", recipe, "--space", "/dev/zero", ok=False))
    many = ", ".join(str(i) for i in range(5_000))
    started = time.time()
    message = one_line(cli("sweep", recipe, f"model.hidden_size=choice({many})", ok=False))
    assert "choice() of 5,000 values; a search takes at most 1,000" in message and time.time() - started < 30
    # 13 keys of 1,000 values each: refused before a single value is checked against the recipe
    keys = ["model.hidden_size", "model.embedding_size", "train.batch_size", "train.seq_len", "train.max_steps",
            "train.eval_every", "train.log_every", "train.seed", "sample.length", "train.keep_checkpoints",
            "train.patience", "train.accumulate", "model.num_layers"]
    thousand = ", ".join(str(i) for i in range(1, 1001))
    space.write_text("".join(f"{k}: choice({thousand})\n" for k in keys))
    started = time.time()
    message = one_line(cli("sweep", recipe, "--space", space, ok=False))
    assert "the space holds 13,000 values to check (13 keys' choices and bounds); a search takes at most 2,000" \
        in message and time.time() - started < 10
    space.write_text("".join(f"{k}: choice({', '.join(str(i) for i in range(1, 31))})\n" for k in keys[:5]))
    message = one_line(cli("sweep", recipe, "--space", space, "--sampler", "grid", ok=False))
    assert "--sampler grid: the space has 24,300,000 points; a grid search takes at most 1,000,000" in message


def test_a_sweep_takes_the_metrics_direction_from_the_task(cli, recipe, tmp_path):
    from seqcli.recipe.resolve import load_recipe
    from seqcli.sweep import maximizes

    assert maximizes(load_recipe("reverse"), "exact_match") and maximizes(load_recipe("reverse"), "bleu")
    assert not maximizes(load_recipe("reverse"), "ter") and not maximizes(load_recipe(str(recipe)), "perplexity")
    assert maximizes(load_recipe("digits"), "accuracy") and not maximizes(load_recipe("seasonal"), "rmse")
    message = one_line(cli("sweep", recipe, "model.dropout=uniform(0, 0.5)", "--metric", "accuracy", "--out",
                           tmp_path / "s", ok=False))
    assert "--metric accuracy: the language_model task does not say whether higher or lower is better; pass " \
           "--maximize or --minimize" in message
    assert not (tmp_path / "s").exists()
