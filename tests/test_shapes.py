"""Every shape a recurrent network is used for learns from a recipe, as a user would run it."""

import json
import random

import pytest

from test_cli import read_metrics

SMALL = ["train.log_every=25", "train.batch_size=32"]


def last_valid(run_dir):
    return [m for m in read_metrics(run_dir) if m["split"] == "valid"][-1]


def test_seq2seq_reverse_learns_and_beam_search_decodes(cli, tmp_path):
    run = tmp_path / "rev"
    cli("run", "reverse", *SMALL, "dataset.train_size=3000", "dataset.max_length=6", "dataset.symbols=5",
        "dataset.valid_size=200", "dataset.test_size=200", "model.hidden_size=64", "model.embedding_size=16",
        "train.max_steps=400", "train.eval_every=200", "train.optimizer.lr=0.01", "sample.inputs=[abcde]",
        "--run-dir", run)
    metrics = last_valid(run)
    assert metrics["exact_match"] > 0.8 and metrics["ter"] < 0.05, metrics
    out = cli("sample", run, "--input", "abcde", "--input", "eedca", "--beam-size", "3").stdout.splitlines()
    assert out == ["edcba", "acdee"]
    nbest = cli("sample", run, "--input", "abc", "--beam-size", "3", "--n-best", "3").stdout
    hyps = [line.split("\t") for line in nbest.strip().splitlines()]
    assert len(hyps) == 3 and hyps[0][0] == "cba"
    assert float(hyps[0][1]) >= float(hyps[1][1]) >= float(hyps[2][1])
    bad = cli("sample", run, "--input", "abc", "--beam-size", "2", "--n-best", "3", ok=False)
    assert bad.exit_code == 2 and bad.stderr == "error: --n-best: must be <= beam_size (2): a beam of 2 keeps only 2 hypotheses\n"
    unknown = cli("sample", run, "--input", "abc", "--input", "abz", ok=False)
    assert unknown.exit_code == 2 and unknown.stderr == "error: input 2 has tokens the model never saw in training: 'z'\n"


def test_n_best_larger_than_beam_is_a_recipe_error(cli):
    result = cli("recipes", "validate", "reverse", "sample.n_best=5", ok=False)
    assert result.exit_code == 2
    assert "sample.n_best: must be <= beam_size (4)" in result.stderr


def test_generate_spells_numbers(cli, tmp_path):
    run = tmp_path / "spell"
    cli("run", "spell", *SMALL, "dataset.max_number=20", "dataset.train_size=2000", "dataset.valid_size=100",
        "dataset.test_size=100", "model.hidden_size=64", "train.max_steps=300", "train.eval_every=150",
        "train.optimizer.lr=0.01", "sample.inputs=['7', '13']", "--run-dir", run)
    assert last_valid(run)["exact_match"] > 0.9, last_valid(run)
    assert cli("sample", run, "-i", "7", "-i", "13", "-i", "20").stdout.splitlines() == ["seven", "thirteen", "twenty"]
    bad = cli("sample", run, "-i", "77", ok=False)
    assert bad.exit_code == 2 and "input 1: unknown condition '77'; the model knows: 0, 1, 2" in bad.stderr


def test_tag_copy_memory_beats_the_blank_baseline(cli, tmp_path):
    run = tmp_path / "mem"
    cli("run", "copy-memory", *SMALL, "dataset.max_length=3", "dataset.delay=6", "dataset.symbols=4",
        "dataset.train_size=3000", "dataset.valid_size=200", "dataset.test_size=200", "train.max_steps=500",
        "train.eval_every=250", "train.optimizer.lr=0.01", "--run-dir", run)
    blank_baseline = (3 + 6) / (2 * 3 + 6)  # predicting '-' everywhere
    assert last_valid(run)["accuracy"] > blank_baseline + 0.2, last_valid(run)
    out = cli("sample", run, "--input", "abd-----:---").stdout.strip()
    assert out == "---------abd"


def test_forecast_beats_the_naive_forecast(cli, tmp_path):
    run = tmp_path / "seasonal"
    cli("run", "seasonal", *SMALL, "dataset.window=30", "dataset.horizon=3", "dataset.train_size=1500",
        "dataset.valid_size=200", "dataset.test_size=200", "model.hidden_size=32", "train.max_steps=250",
        "train.eval_every=250", "train.optimizer.lr=0.01", "--run-dir", run)
    m = last_valid(run)
    assert m["mae"] < 0.6 * m["baseline_mae"], m
    window = "; ".join(str(round(v / 10, 2)) for v in range(30))
    values = cli("sample", run, "--input", window).stdout.strip().split("; ")
    assert len(values) == 3 and all(float(v) == float(v) for v in values)


def test_adding_problem_lstm_beats_the_mean_baseline(cli, tmp_path):
    run = tmp_path / "adding"
    cli("run", "adding", *SMALL, "dataset.max_length=10", "dataset.train_size=3000", "dataset.valid_size=300",
        "dataset.test_size=300", "model.hidden_size=32", "train.max_steps=400", "train.eval_every=400",
        "train.optimizer.lr=0.01", "--run-dir", run)
    m = last_valid(run)
    assert m["rmse"] < 0.5 * m["baseline_rmse"], m  # the mean predictor's RMSE is about 0.4


def test_classify_digits_read_row_by_row(cli, tmp_path):
    pytest.importorskip("sklearn")
    run = tmp_path / "digits"
    cli("run", "digits", *SMALL, "train.max_steps=150", "train.eval_every=150", "--run-dir", run)
    m = last_valid(run)
    assert m["accuracy"] > 0.85 and m["macro_f1"] > 0.85, m
    scored = json.loads(cli("evaluate", run, "--split", "test", "--json").stdout)
    assert scored["accuracy"] > 0.85


def test_generate_captions_from_digit_images(cli, tmp_path):
    pytest.importorskip("sklearn")
    run = tmp_path / "caption"
    cli("run", "digits-caption", *SMALL, "train.max_steps=300", "train.eval_every=300", "--run-dir", run)
    assert last_valid(run)["exact_match"] > 0.7, last_valid(run)


# -- the same models on a user's own files, changing only the dataset section --------------

def sentiment_rows(n, seed):
    rng = random.Random(seed)
    good, bad = ["good", "great", "lovely", "fine"], ["bad", "awful", "poor", "sad"]
    fillers = ["the", "film", "was", "really", "a", "plot", "very", "quite"]
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(fillers) for _ in range(rng.randint(2, 8))]
        words.insert(rng.randint(0, len(words)), rng.choice(good if label == "pos" else bad))
        rows.append({"text": " ".join(words), "sentiment": label})
    return rows


def test_classify_a_users_jsonl_and_csv(cli, tmp_path):
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sentiment_rows(600, 0)))
    dataset = "dataset={name: labeled, path: reviews.jsonl, input: text, label: sentiment}"
    run = tmp_path / "sent"
    cli("run", "digits", *SMALL, dataset, "model.embedding_size=16", "model.hidden_size=32", "train.max_steps=150",
        "train.eval_every=150", "--run-dir", run)
    assert last_valid(run)["accuracy"] > 0.9, last_valid(run)
    out = cli("sample", run, "--input", "the film was awful", "--n-best", "2").stdout.strip().split("\t")
    assert out[0] == "neg" and float(out[1]) > 0.5 and out[2] == "pos"
    csv = tmp_path / "more.csv"
    csv.write_text("sentiment,text\n" + "".join(f"{r['sentiment']},{r['text']}\n" for r in sentiment_rows(50, 9)))
    (tmp_path / "cfg.yaml").write_text(
        f"dataset: {{name: labeled, path: {csv}, input: text, label: sentiment}}\n"
        "task: {name: classify}\nmodel: {cell: {name: gru}, hidden_size: 8}\ntrain: {max_steps: 2, eval_every: 2}\n")
    cli("run", tmp_path / "cfg.yaml", "--run-dir", tmp_path / "csvrun")


def test_classify_numeric_sequences_of_any_length(cli, tmp_path):
    rng = random.Random(0)
    lines = []
    for _ in range(500):
        steps = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(rng.randint(3, 12))]
        label = "up" if sum(s[0] for s in steps) > 0 else "down"
        lines.append(json.dumps({"input": steps, "label": label}))
    (tmp_path / "frames.jsonl").write_text("\n".join(lines) + "\n")
    run = tmp_path / "frames"
    cli("run", "digits", *SMALL, "dataset={name: labeled, path: frames.jsonl, input_type: numbers}",
        "model.pooling=mean", "train.max_steps=200", "train.eval_every=200", "--run-dir", run)
    assert last_valid(run)["accuracy"] > 0.85, last_valid(run)
    assert cli("sample", run, "--input", "0.9 0; 0.8 0.1; 0.7 -0.3").stdout.startswith("up\t")


def test_tag_a_users_conll_file(cli, tmp_path):
    lexicon = {"DT": ["the", "a"], "NN": ["cat", "dog", "mat"], "VB": ["sat", "ran", "saw"], "IN": ["on", "by"]}
    rng = random.Random(0)
    sentences = []
    for _ in range(300):
        pattern = ["DT", "NN", "VB"] + (["IN", "DT", "NN"] if rng.random() < 0.5 else [])
        sentences.append("\n".join(f"{rng.choice(lexicon[t])} X {t}" for t in pattern))
    (tmp_path / "train.conll").write_text("-DOCSTART- -X- O\n\n" + "\n\n".join(sentences[:250]) + "\n")
    (tmp_path / "dev.conll").write_text("\n\n".join(sentences[250:]) + "\n")
    run = tmp_path / "pos"
    cli("run", "copy-memory", *SMALL, "dataset={name: conll, train: train.conll, valid: dev.conll}",
        "model.bidirectional=true", "train.max_steps=100", "train.eval_every=100", "--run-dir", run)
    assert last_valid(run)["accuracy"] > 0.95, last_valid(run)
    assert cli("sample", run, "--input", "a dog saw the cat").stdout.strip() == "a/DT dog/NN saw/VB the/DT cat/NN"


def test_seq2seq_on_a_users_tsv_with_repeated_sources(cli, tmp_path):
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdef") for _ in range(rng.randint(2, 6))) for _ in range(800)]
    rows = [f"{w}\t{w[::-1]}" for w in words] + ["ab\tba", "ab\tbaa"]  # one source, two targets
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "tsv"
    cli("run", "reverse", *SMALL, "dataset={name: pairs, path: pairs.tsv, source: 0, target: 1}",
        "model.hidden_size=64", "model.embedding_size=16", "train.max_steps=300", "train.eval_every=300",
        "train.optimizer.lr=0.01", "sample.inputs=[abc]", "--run-dir", run)
    assert last_valid(run)["exact_match"] > 0.5, last_valid(run)
    other = tmp_path / "other.tsv"
    other.write_text("abc\tcba\nfed\tdef\n")
    scored = json.loads(cli("evaluate", run, "--file", other, "--json").stdout)
    assert {"loss", "exact_match", "ter", "token_accuracy"} <= set(scored)
    inputs = tmp_path / "in.txt"
    inputs.write_text("abc\n\nfed\n")
    out = tmp_path / "out.txt"
    cli("sample", run, "--input-file", inputs, "--output", out)
    assert out.read_text().splitlines() == ["cba", "def"]
    again = cli("sample", run, "--input-file", inputs, "--output", out, ok=False)
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr


def test_forecast_a_users_csv(cli, tmp_path):
    import math

    rows = ["time,temp,load"] + [f"{t},{math.sin(t / 5):.4f},{math.cos(t / 5):.4f}" for t in range(600)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "csv"
    cli("run", "seasonal", *SMALL, "dataset={name: series, path: s.csv, columns: [temp, load], target_columns: [temp], "
        "window: 12, horizon: 2}", "train.max_steps=200", "train.eval_every=200", "train.optimizer.lr=0.01",
        "--run-dir", run)
    m = last_valid(run)
    assert m["mae"] < 0.5 * m["baseline_mae"], m
