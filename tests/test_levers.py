"""The training and decoding levers of the NMT toolkits: each does what it says, measured."""

import copy
import json
import math
import subprocess
import sys

import pytest
import torch

from seqcli.errors import DataError
from seqcli.train import checkpoint

# reverse strings: a seq2seq task whose batches hold different numbers of target tokens, so a
# step over several batches is right only if each batch's loss is weighted by its tokens
REVERSE = ["dataset.train_size=400", "dataset.valid_size=40", "dataset.max_length=8", "model.hidden_size=16",
           "model.embedding_size=8", "train.eval_every=3", "train.log_every=1", "train.max_steps=3",
           "train.eval_batches=1", "sample.inputs=[]", "train.clip_grad_norm=1000",
           "train.optimizer={name: sgd, lr: 0.5}"]  # an update in proportion to the gradient: comparable


def weights(run_dir):
    return checkpoint.load(run_dir, "last").model


def largest_difference(a, b) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def seqcli(*args):
    return subprocess.run([sys.executable, "-m", "seqcli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("reduction", ["token_mean", "sequence_sum"])
def test_accumulating_four_batches_is_one_step_on_a_batch_four_times_larger(cli, tmp_path, reduction):
    keys = [*REVERSE, f"train.loss_reduction={reduction}"]
    cli("run", "reverse", *keys, "train.batch_size=32", "--run-dir", tmp_path / "large")
    run = cli("run", "reverse", *keys, "train.batch_size=8", "train.accumulate=4", "--run-dir", tmp_path / "four")
    assert "a step is one optimizer update over 4 batches of 8" in run.stdout
    assert largest_difference(weights(tmp_path / "large"), weights(tmp_path / "four")) < 1e-6
    records = [json.loads(line) for line in (tmp_path / "four" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3] and all(r["batches_per_step"] == 4 for r in train)
    large = [json.loads(line) for line in (tmp_path / "large" / "metrics.jsonl").read_text().splitlines()]
    assert [round(r["loss"], 5) for r in train] == [round(r["loss"], 5) for r in large if r["split"] == "train"]


def test_accumulation_in_bf16_and_across_an_epoch_end(cli, tmp_path):
    """In bf16 a product's rounding depends on the shape it is computed in, so a batch of 8
    and a batch of 32 round differently: the accumulated step is as close to the large
    batch's as bf16 is to fp32, no closer. An epoch whose batches do not fill its last step
    ends with a smaller one, and resuming there is exact."""
    one = [k for k in REVERSE if not k.startswith("train.max_steps")] + ["train.max_steps=1", "train.eval_every=1"]
    cli("run", "reverse", *one, "train.batch_size=32", "--run-dir", tmp_path / "fp32")
    cli("run", "reverse", *one, "train.batch_size=32", "train.precision=bf16", "--run-dir", tmp_path / "large")
    cli("run", "reverse", *one, "train.batch_size=8", "train.accumulate=4", "train.precision=bf16", "--run-dir",
        tmp_path / "four")
    rounding = largest_difference(weights(tmp_path / "large"), weights(tmp_path / "fp32"))
    assert 0 < largest_difference(weights(tmp_path / "large"), weights(tmp_path / "four")) <= 1.5 * rounding
    # 400 examples in batches of 64: 7 batches an epoch, so steps of 3 batches leave one over
    epoch = [k for k in REVERSE if not k.startswith("train.max_steps")] + ["train.batch_size=64",
                                                                           "train.accumulate=3"]
    cli("run", "reverse", *epoch, "train.max_steps=4", "--run-dir", tmp_path / "whole")
    cli("run", "reverse", *epoch, "train.max_steps=2", "--run-dir", tmp_path / "half")
    cli("resume", tmp_path / "half", "train.max_steps=4")
    whole, half = checkpoint.load(tmp_path / "whole", "last"), checkpoint.load(tmp_path / "half", "last")
    assert (whole.epoch, whole.position) == (1, 3)  # 3 steps in epoch 1 (3 + 3 + 1 batches), 1 in epoch 2
    assert largest_difference(whole.model, half.model) == 0.0


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_processes_accumulating_equal_one_process_on_the_whole_batch(tmp_path):
    one = seqcli("run", "reverse", *REVERSE, "train.batch_size=32", "--run-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = seqcli("run", "reverse", *REVERSE, "train.batch_size=16", "train.accumulate=2", "--run-dir",
                 tmp_path / "two", "--nproc-per-node", 2)
    assert two.returncode == 0, two.stderr
    assert largest_difference(weights(tmp_path / "one"), weights(tmp_path / "two")) < 1e-6


def test_accumulate_is_checked_and_changes_what_is_learnt(cli, tmp_path):
    result = cli("run", "reverse", *REVERSE, "train.accumulate=0", ok=False)
    assert result.exit_code == 2 and "train.accumulate: must be >= 1 and <= 4096, got 0" in result.stderr
    cli("run", "reverse", *REVERSE, "--run-dir", tmp_path / "run")
    refused = cli("resume", tmp_path / "run", "train.max_steps=6", "train.accumulate=2", ok=False)
    assert refused.exit_code == 2 and "train.accumulate" in refused.stderr and "--force" in refused.stderr


# -- label smoothing ---------------------------------------------------------------------------

SMALL_MODELS = {  # a recipe of each task with a token-level loss, made tiny
    "reverse": ["dataset.train_size=64", "dataset.valid_size=16", "model.hidden_size=8"],
    "spell": ["dataset.train_size=64", "dataset.valid_size=16", "model.hidden_size=8"],
    "copy-memory": ["dataset.train_size=64", "dataset.valid_size=16", "model.hidden_size=8"],
    "digits": ["model.hidden_size=8"],
    "char-lm": ["model.hidden_size=8", "model.embedding_size=8", "model.num_layers=1", "model.dropout=0", "train.seq_len=8",
                "train.batch_size=4"],
}


@pytest.mark.parametrize("recipe", sorted(SMALL_MODELS))
def test_label_smoothing_is_in_the_training_loss_and_never_in_validation(recipe, corpus):
    import torch.nn.functional as F

    from seqcli import build
    from seqcli.config import TrainConfig
    from seqcli.recipe.resolve import load_recipe

    extra = [f"dataset.path={corpus}"] if recipe == "char-lm" else []
    plain_recipe = load_recipe(recipe, [*SMALL_MODELS[recipe], *extra])
    data = build.dataset(plain_recipe).load()
    assert build.task(load_recipe(recipe, [*SMALL_MODELS[recipe], *extra, "task.label_smoothing=0.2"])
                      ).label_smoothing == 0.2  # the recipe key reaches the task
    plain = build.task(plain_recipe)
    model = build.model(plain, data, plain_recipe)
    smooth = copy.copy(plain)  # the same task, prepared by build_model, smoothing
    smooth.label_smoothing = 0.2
    config = TrainConfig(batch_size=8, seq_len=8, eval_batches=2)
    batch = next(iter(plain.batches(data, config, 0)))
    model.train()  # the built-in models have no dropout here: train and eval compute the same logits
    if recipe == "char-lm":
        trained = [t.train_step(model, batch, None).loss.item() for t in (plain, smooth)]
        x, y = batch
        logits = model(x.long(), None)[0]
        assert trained[1] == pytest.approx(F.cross_entropy(logits.flatten(0, 1), y.long().flatten(),
                                                           label_smoothing=0.2).item(), rel=1e-6)
    else:
        trained = [t.loss(model, t.batch(model, batch))[0].item() for t in (plain, smooth)]
    assert trained[0] != trained[1]  # smoothing changes the training objective
    validation = [torch.no_grad()(t.evaluate)(model.eval(), data, "valid", config)["loss"] for t in (plain, smooth)]
    assert validation[0] == validation[1]  # and never the validation loss


def test_label_smoothing_is_checked(cli):
    result = cli("recipes", "validate", "reverse", "task.label_smoothing=1", ok=False)
    assert result.exit_code == 2 and "task.label_smoothing: must be >= 0 and < 1, got 1" in result.stderr


# -- averaged weights: seqcli average, train.ema -------------------------------------------

KEEP = [*[k for k in REVERSE if not k.startswith(("train.max_steps", "train.eval_every", "train.optimizer"))],
        "train.max_steps=6", "train.eval_every=2", "train.keep_checkpoints=3", "train.optimizer={name: adam, lr: 0.01}"]


def test_average_writes_the_mean_of_the_checkpoints_asked_for(cli, tmp_path):
    run = tmp_path / "run"
    cli("run", "reverse", *KEEP, "--run-dir", run)
    steps = [checkpoint.load(run / "checkpoints" / f"step-{n:08d}.pt") for n in (2, 4, 6)]
    out = cli("average", run, "--last", 3, "-o", tmp_path / "avg.pt").stdout
    assert "the mean of the checkpoints of steps 2, 4, 6" in out
    averaged = checkpoint.load(tmp_path / "avg.pt")
    assert averaged.averaged == [2, 4, 6] and averaged.optimizer is None
    for name, value in averaged.model.items():
        assert torch.allclose(value, sum(c.model[name] for c in steps) / 3, atol=1e-7), name
    # usable wherever a checkpoint is
    assert cli("sample", tmp_path / "avg.pt", "--input", "abc", "--input", "de").stdout.count("\n") == 2
    assert "loss" in json.loads(cli("evaluate", tmp_path / "avg.pt", "--json").stdout)
    refused = cli("resume", tmp_path / "avg.pt", ok=False)
    assert refused.exit_code == 2
    # the two best by the task's main metric
    main = "loss"
    ranked = sorted(steps, key=lambda c: c.metrics[main])[:2]
    cli("average", run, "--best", 2, "-o", tmp_path / "best2.pt")
    assert checkpoint.load(tmp_path / "best2.pt").averaged == sorted(c.step for c in ranked)
    # mistakes are one line; nothing is replaced without --force
    assert "3 numbered checkpoint(s) kept, 4 asked for" in cli("average", run, "--last", 4, "-o", tmp_path / "x.pt",
                                                               ok=False).stderr
    assert "already exists; pass --force" in cli("average", run, "--last", 2, "-o", tmp_path / "avg.pt",
                                                 ok=False).stderr
    assert "say which of its checkpoints: --last K or --best K" in cli("average", run, "-o", tmp_path / "y.pt",
                                                                       ok=False).stderr
    files = [run / "checkpoints" / f"step-{n:08d}.pt" for n in (4, 6)]
    cli("average", *files, "-o", tmp_path / "two.pt")
    assert checkpoint.load(tmp_path / "two.pt").averaged == [4, 6]


def test_ema_is_evaluated_saved_and_sampled_and_resuming_it_is_exact(cli, tmp_path):
    ema = [*KEEP, "train.keep_checkpoints=1", "train.ema=0.9"]
    cli("run", "reverse", *ema, "--run-dir", tmp_path / "whole")
    cli("run", "reverse", *ema, "train.max_steps=4", "--run-dir", tmp_path / "half")
    cli("resume", tmp_path / "half", "train.max_steps=6")
    whole, half = checkpoint.load(tmp_path / "whole", "last"), checkpoint.load(tmp_path / "half", "last")
    assert largest_difference(whole.model, half.model) == 0.0  # the average, resumed exactly
    assert whole.average["kind"] == "ema" and "ema" not in whole.optimizer  # a field of its own
    training = whole.average["state"]["weights"]
    assert whole.average["state"]["updates"] == 6
    assert any((w - a).abs().max() > 1e-4 for w, a in zip(training, whole.model.values()))  # an average, not the weights
    # what was evaluated at step 6 is the model saved: evaluate the checkpoint and get the same loss
    logged = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in logged if r["split"] == "valid"][-1]
    scored = json.loads(cli("evaluate", tmp_path / "whole", "--checkpoint", "last", "--split", "valid", "--json").stdout)
    assert scored["loss"] == pytest.approx(valid["loss"], rel=1e-6)
    result = cli("recipes", "validate", "char-lm", "train.ema=0.99", "train.optimizer={name: ntasgd}", ok=False)
    assert "train.ema: the ntasgd optimizer averages the weights itself" in result.stderr
    # a checkpoint of format 2 kept the average's state in the optimizer's: it still resumes exactly
    cli("run", "reverse", *ema, "train.max_steps=4", "--run-dir", tmp_path / "old")
    last = tmp_path / "old" / "checkpoints" / "last.pt"
    obj = torch.load(last, weights_only=True)
    assert obj["format_version"] == 3 and obj["average"]["kind"] == "ema"
    obj["optimizer"]["ema"], obj["format_version"] = obj.pop("average")["state"], 2
    torch.save(checkpoint.seal(obj), last)
    assert checkpoint.load(last).average["kind"] == "ema"
    cli("resume", tmp_path / "old", "train.max_steps=6")
    assert largest_difference(whole.model, checkpoint.load(tmp_path / "old", "last").model) == 0.0


# -- ensembles: seqcli sample RUN1 RUN2 ..., seqcli evaluate RUN1 RUN2 ... ----------------------

TINY = {  # a run of every task that can combine models, a few steps long
    "reverse": SMALL_MODELS["reverse"],
    "copy-memory": SMALL_MODELS["copy-memory"],
    "digits": SMALL_MODELS["digits"],
    "digits-caption": ["model.hidden_size=8"],
    "seasonal": ["dataset.train_size=64", "dataset.valid_size=16", "dataset.test_size=16", "model.hidden_size=8"],
    "char-lm": SMALL_MODELS["char-lm"],
}


def tiny_run(cli, recipe, where, seed, corpus):
    extra = [f"dataset.path={corpus}"] if recipe == "char-lm" else []
    cli("run", recipe, *TINY[recipe], *extra, f"train.seed={seed}", "train.max_steps=4", "train.eval_every=4",
        "train.eval_batches=1", "--run-dir", where)
    return where


def scores(cli, *runs):
    result = json.loads(cli("evaluate", *runs, "--split", "valid", "--json").stdout)
    return {k: v for k, v in result.items() if isinstance(v, float)}


@pytest.mark.parametrize("recipe", sorted(TINY))
def test_an_ensemble_scores_no_worse_than_its_members_and_of_one_model_twice_is_that_model(recipe, cli, tmp_path,
                                                                                             corpus):
    a = tiny_run(cli, recipe, tmp_path / "a", 1, corpus)
    b = tiny_run(cli, recipe, tmp_path / "b", 2, corpus)
    alone, twice = scores(cli, a), scores(cli, a, a)
    assert twice.keys() == alone.keys()
    for name in alone:
        assert twice[name] == pytest.approx(alone[name], rel=1e-5, abs=1e-6), name
    # cross-entropy and squared error are convex: the loss of the mean prediction is at most the
    # mean of the losses (Jensen), and below it unless the two models agree everywhere
    both = scores(cli, a, b)["loss"]
    members = [alone["loss"], scores(cli, b)["loss"]]
    assert both < sum(members) / 2
    assert scores(cli, b, a)["loss"] == pytest.approx(both, rel=1e-5)  # the members' order does not matter
    # and it decodes: the same outputs as the model alone when it is the model twice
    if recipe in ("reverse", "char-lm"):
        options = ["--input", "abc", "--input", "cab", "--beam-size", "3"] if recipe == "reverse" else \
            ["--prime", "the ", "--length", "30", "--temperature", "0"]
        assert cli("sample", a, a, *options).stdout == cli("sample", a, *options).stdout
        assert cli("sample", a, b, *options).stdout.count("\n") == cli("sample", a, *options).stdout.count("\n")


def test_an_ensemble_is_of_one_task_and_one_dataset(cli, tmp_path, corpus):
    reverse = tiny_run(cli, "reverse", tmp_path / "rev", 1, corpus)
    lm = tiny_run(cli, "char-lm", tmp_path / "lm", 1, corpus)
    refused = cli("sample", reverse, lm, "--input", "abc", ok=False)
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "a language_model model" in refused.stderr and "an ensemble combines models of one task" in refused.stderr
    other = tmp_path / "symbols"
    cli("run", "reverse", *TINY["reverse"], "dataset.symbols=5", "train.max_steps=1", "--run-dir", other)
    refused = cli("evaluate", reverse, other, ok=False)
    assert "differ" in refused.stderr and "an ensemble combines models trained on the same data" in refused.stderr
    glimpses = tmp_path / "glimpsing"
    cli("run", "digits-glimpses", "model.hidden_size=8", "train.max_steps=1", "--run-dir", glimpses)
    refused = cli("evaluate", glimpses, glimpses, ok=False)
    assert "the glimpse task cannot combine models (it has no Task.ensemble)" in refused.stderr


# -- pretrained word vectors: model.embeddings -----------------------------------------------------

WORD_LM = ["model.embedding_size=8", "model.hidden_size=8", "model.num_layers=1", "train.max_steps=5",
           "train.eval_every=5", "train.eval_batches=1", "train.seq_len=8", "train.batch_size=4"]
KNOWN = ["the", "cat", "dog", "sat", "unseen-in-the-corpus"]


def vectors(seed=0, dim=8):
    generator = torch.Generator().manual_seed(seed)
    return {w: [round(v, 4) for v in (torch.rand(dim, generator=generator) * 2 - 1).tolist()] for w in KNOWN}


def write_vectors(path, table, kind):
    import struct

    dim = len(next(iter(table.values())))
    if kind == "binary":  # word2vec's own: a header, then each word, a space and float32s
        with open(path, "wb") as f:
            f.write(f"{len(table)} {dim}\n".encode())
            for word, values in table.items():
                f.write(word.encode() + b" " + struct.pack(f"<{dim}f", *values) + b"\n")
        return path
    lines = [f"{word} {' '.join(map(str, values))}" for word, values in table.items()]
    header = [f"{len(table)} {dim}"] if kind == "word2vec" else []  # GloVe has none
    path.write_text("\n".join(header + lines) + "\n")
    return path


@pytest.mark.parametrize("kind", ["glove", "word2vec", "binary"])
def test_the_vectors_of_every_format_are_read_alike(kind, tmp_path):
    from seqcli.nn import pretrained

    table = vectors()
    dim, found = pretrained.read(str(write_vectors(tmp_path / "v", table, kind)), {"the", "dog", "nowhere"})
    assert dim == 8 and found.keys() == {"the", "dog"}
    for word in found:
        assert found[word] == pytest.approx(table[word], abs=1e-6)


def test_embeddings_from_a_file_start_the_rows_of_known_words_and_stay_when_frozen(cli, tmp_path, corpus):
    table = vectors()
    glove = write_vectors(tmp_path / "glove.txt", table, "glove")
    run = cli("run", "word-lm", f"dataset.path={corpus}", *WORD_LM, f"model.embeddings={{path: {glove}, freeze: true}}",
              "--run-dir", tmp_path / "frozen").stdout
    saved = checkpoint.load(tmp_path / "frozen", "last")
    vocab = saved.fields["text"]
    assert "model.embeddings: embed: 4 of" in run and "from glove.txt" in run and "frozen" in run
    for word in ("the", "cat", "dog", "sat"):  # five optimizer steps later, as the file has them
        row = saved.model["embed.weight"][vocab.index[word]]
        assert row.tolist() == pytest.approx(table[word], abs=1e-6), word
    # frozen on resume too, with the file gone (a resumed run takes its weights from the checkpoint)
    glove.unlink()
    cli("resume", tmp_path / "frozen", "train.max_steps=8")
    resumed = checkpoint.load(tmp_path / "frozen", "last")
    assert resumed.step == 8 and torch.equal(resumed.model["embed.weight"], saved.model["embed.weight"])
    # not frozen: the rows start from the file and then learn
    write_vectors(glove, table, "glove")
    cli("run", "word-lm", f"dataset.path={corpus}", *WORD_LM, f"model.embeddings={{path: {glove}}}",
        "train.optimizer={name: adam, lr: 0.001}", "--run-dir", tmp_path / "learning")
    learnt = checkpoint.load(tmp_path / "learning", "last").model["embed.weight"][vocab.index["the"]]
    assert 0 < (learnt - torch.tensor(table["the"])).abs().max() <= 5 * 0.001 + 1e-6  # Adam moves each by <= lr


def test_embeddings_mistakes_are_one_line(cli, tmp_path, corpus):
    wide = write_vectors(tmp_path / "wide.txt", vectors(dim=5), "word2vec")
    result = cli("run", "word-lm", f"dataset.path={corpus}", *WORD_LM, f"model.embeddings={{path: {wide}}}",
                 "--run-dir", tmp_path / "wide", ok=False)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "holds vectors of 5 values; the model's embed has 8 (set model.embedding_size: 5)" in result.stderr
    assert not (tmp_path / "wide").exists()  # refused before the run folder was made
    result = cli("run", "seasonal", f"model.embeddings={{path: {wide}}}", "--run-dir", tmp_path / "s", ok=False)
    assert "model.embeddings: the Forecaster model embeds no vocabulary" in result.stderr
    (tmp_path / "bad.txt").write_text("the 0.1 0.2\ncat 0.3 nan\n")
    result = cli("run", "word-lm", f"dataset.path={corpus}", *WORD_LM, "model.embedding_size=2",
                 f"model.embeddings={{path: {tmp_path / 'bad.txt'}}}", "--run-dir", tmp_path / "bad", ok=False)
    assert "bad.txt, line 2: not a word and 2 finite numbers" in result.stderr
    (tmp_path / "huge.txt").write_text("the 0.1 0.2\ncat 0.3 3.5e38\n")  # finite, but not as float32
    result = cli("run", "word-lm", f"dataset.path={corpus}", *WORD_LM, "model.embedding_size=2",
                 f"model.embeddings={{path: {tmp_path / 'huge.txt'}}}", "--run-dir", tmp_path / "huge", ok=False)
    assert "huge.txt, line 2: not a word and 2 finite numbers (float32: at most 3.403e+38 in size)" in result.stderr
    result = cli("recipes", "validate", "word-lm", f"dataset.path={corpus}", "model.embeddings={path: nope.txt}",
                 ok=False)
    assert "model.embeddings.path: file not found: nope.txt" in result.stderr


# -- cross-validation: seqcli run --folds K, dataset.folds ---------------------------------------

DIGITS = ["model.hidden_size=8", "train.max_steps=6", "train.eval_every=3", "train.log_every=3"]


def test_folds_deal_every_example_to_one_validation_fold():
    from seqcli.api import Data
    from seqcli.data import folds

    data = Data(splits={"train": list(range(70)), "valid": list(range(70, 100)), "test": ["t"]}, fields={},
                info={"train_examples": 70, "valid_examples": 30})
    dealt = [folds.deal(data, 4, n, "toy") for n in (1, 2, 3, 4)]
    held = [d.splits["valid"] for d in dealt]
    assert sorted(x for h in held for x in h) == list(range(100))  # each example validates once
    assert sorted(len(h) for h in held) == [25, 25, 25, 25]
    for d in dealt:
        assert set(d.splits["train"]) | set(d.splits["valid"]) == set(range(100)) and d.splits["test"] == ["t"]
        assert not set(d.splits["train"]) & set(d.splits["valid"])
        assert d.info["train_examples"] == 75 and d.info["valid_examples"] == 25
    assert folds.deal(data, 4, 2, "toy").splits == dealt[1].splits  # one dealing, always


def test_ordered_examples_forward_chain_each_fold_validating_after_all_it_trains_on():
    from seqcli.api import Data
    from seqcli.data import folds

    data = Data(splits={"train": list(range(80)), "valid": list(range(80, 100)), "test": ["t"]}, fields={},
                info={"train_examples": 80, "valid_examples": 20}, ordered=True, gap=2)
    dealt = [folds.deal(data, 4, n, "series") for n in (1, 2, 3, 4)]
    for n, d in enumerate(dealt, 1):
        train, valid = d.splits["train"], d.splits["valid"]
        assert valid == list(range(20 * n, 20 * n + 20))  # blocks of 100 // 5, in time order, never shuffled
        assert train == list(range(20 * n - 2))  # everything before it but the gap
        assert d.info["fold"] == f"{n} of 4, forward-chaining" and d.splits["test"] == ["t"]
    with pytest.raises(DataError, match=r"dataset.folds: 9 ordered training and validation examples cannot make 4 "
                                        r"forward-chaining folds .* 2 left out between them\); use fewer folds"):
        folds.deal(Data(splits={"train": list(range(6)), "valid": [6, 7, 8]}, fields={}, ordered=True, gap=2),
                   4, 1, "series")


def test_a_series_is_cross_validated_forward(cli, tmp_path):
    out = cli("run", "seasonal", "train.max_steps=4", "train.eval_every=4", "dataset.train_size=200",
              "dataset.valid_size=40", "model.hidden_size=8", "--folds", 3, "--run-dir", tmp_path / "cv").stdout
    assert "3-fold cross-validation (forward-chaining" in out
    assert json.loads((tmp_path / "cv" / "folds.json").read_text())["scheme"] == "forward-chaining"
    info = [checkpoint.load(tmp_path / "cv" / f"fold-{n}", "best").data_info for n in (1, 2, 3)]
    # 240 windows in 4 blocks of 60; the recipe's horizon of 6 leaves 5 windows out before each block
    assert [i["train_examples"] for i in info] == [55, 115, 175] and [i["valid_examples"] for i in info] == [60] * 3


def test_run_with_folds_trains_every_fold_and_reports_the_mean_and_spread(cli, tmp_path):
    out = cli("run", "digits", *DIGITS, "--folds", 3, "--run-dir", tmp_path / "cv").stdout
    summary = json.loads((tmp_path / "cv" / "folds.json").read_text())
    accuracy = summary["valid"]["accuracy"]
    assert summary["folds"] == 3 and len(accuracy["folds"]) == 3
    assert accuracy["mean"] == pytest.approx(sum(accuracy["folds"]) / 3)
    assert accuracy["std"] == pytest.approx(torch.tensor(accuracy["folds"]).std(unbiased=False).item(), abs=1e-9)
    assert "3-fold cross-validation" in out and f"{accuracy['mean']:.4f}" in out
    # each fold is an ordinary run whose recipe says its fold: evaluate scores its validation fold again
    fold2 = tmp_path / "cv" / "fold-2"
    assert "fold: 2" in (fold2 / "recipe.yaml").read_text()
    scored = json.loads(cli("evaluate", fold2, "--split", "valid", "--json").stdout)
    assert scored["accuracy"] == pytest.approx(accuracy["folds"][1], abs=1e-6)
    # the folder is never trained into again; --resume keeps the folds done and trains further
    refused = cli("run", "digits", *DIGITS, "--folds", 3, "--run-dir", tmp_path / "cv", ok=False)
    assert refused.exit_code == 2 and "already exists and is not empty" in refused.stderr
    again = cli("run", "digits", *DIGITS, "train.max_steps=9", "--folds", 3, "--run-dir", tmp_path / "cv", "--resume")
    assert json.loads((tmp_path / "cv" / "folds.json").read_text())["steps"] == [9, 9, 9], again.stdout


def test_folds_mistakes_are_one_line(cli, tmp_path, corpus):
    result = cli("recipes", "validate", "digits", "dataset.folds=3", "dataset.fold=4", ok=False)
    assert "dataset.fold: must be 1 to dataset.folds (3), got 4" in result.stderr
    result = cli("recipes", "validate", "digits", "dataset.fold=2", ok=False)
    assert "override 'dataset.fold=2': dataset.fold: needs dataset.folds" in result.stderr
    result = cli("run", "digits", "dataset.folds=3", "dataset.fold=2", "--folds", 3, ok=False)
    assert "--folds: the recipe sets dataset.fold (2), one fold's run; remove it to train every fold" in result.stderr
    result = cli("run", "char-lm", f"dataset.path={corpus}", "--folds", 2, "--run-dir", tmp_path / "lm", ok=False)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "dataset.folds: the text dataset's splits are not lists of examples" in result.stderr
    assert not (tmp_path / "lm").exists()  # nothing left behind


def test_a_dataset_with_its_own_folds_option_is_not_shadowed(cli, tmp_path, monkeypatch):
    """A dataset plugin that takes `folds` itself: a recipe giving `dataset.folds` is one line
    saying whose key it is, never silently taken for cross-validation."""
    from seqcli import registry
    from tests.test_registry import fake_package

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    fake_package(site, "seqcli-foldy", {"seqcli.datasets": {"foldy": "foldy:Foldy"}}, {"foldy": """
        from seqcli.data.datasets.synthetic import SyntheticDataset

        class Foldy(SyntheticDataset):
            # its own `folds` option: how many times each problem is repeated
            def __init__(self, folds: int = 1, problem: str = "reverse", train_size: int = 500,
                         max_length: int = 10, symbols: int = 10, seed: int = 0):
                super().__init__(problem=problem, train_size=train_size, max_length=max_length,
                                 symbols=symbols, seed=seed)
                self.repeats = folds
    """})
    registry.forget()
    try:
        result = cli("recipes", "validate", "reverse", "dataset.name=foldy", "dataset.folds=3", ok=False)
        assert result.exit_code != 0
        assert ("dataset.folds: the foldy dataset has its own 'folds' option, and dataset.folds and dataset.fold "
                "are seqcli's cross-validation keys") in result.stderr
        cli("recipes", "validate", "reverse", "dataset.name=foldy")  # without the key, the plugin works
    finally:
        registry.forget()


def test_a_sweep_with_folds_optimises_the_mean_of_the_folds(cli, tmp_path):
    import optuna

    result = cli("sweep", "digits", "train.optimizer.lr=choice(0.01, 0.00001)", *DIGITS, "--trials", 2,
                 "--sampler", "grid", "--folds", 2, "--out", tmp_path / "s")
    assert "each trial the mean of 2 folds" in result.stdout
    study = optuna.load_study(storage=f"sqlite:///{tmp_path / 's' / 'study.db'}", study_name="sweep")
    for trial in study.get_trials():
        summary = json.loads((tmp_path / "s" / f"trial-{trial.number:04d}" / "folds.json").read_text())
        assert trial.value == pytest.approx(summary["valid"]["loss"]["mean"])
    best = (tmp_path / "s" / "best.yaml").read_text()
    assert "folds" not in best and "fold:" not in best  # the recipe to train on all the data with
    cli("recipes", "validate", tmp_path / "s" / "best.yaml")


# -- the coverage penalty, from the command line -----------------------------------------------

def test_the_coverage_penalty_from_the_command_line(cli, tmp_path, corpus):
    run = tiny_run(cli, "reverse", tmp_path / "rev", 1, corpus)
    short = ["-i", "abcdefg", "-i", "gfedcba", "-b", 3, "--n-best", 3, "--max-length", 2]  # 2 steps cannot read 7
    plain = [line.split("\t") for line in cli("sample", run, *short).stdout.splitlines() if line]
    covered = [line.split("\t") for line in cli("sample", run, *short, "--coverage-penalty", 0.4).stdout.splitlines()
               if line]
    assert len(plain) == len(covered) == 6
    # the beam finds the same hypotheses, each scored lower by the attention it did not give: 2 steps
    # of attention over 7 positions leave sum log(min(received, 1)) at most 7 log(2/7) (spread evenly)
    before = {(i // 3, text): float(score) for i, (text, score) in enumerate(plain)}
    after = {(i // 3, text): float(score) for i, (text, score) in enumerate(covered)}
    assert before.keys() == after.keys()
    assert all(after[k] <= before[k] + 0.4 * 7 * math.log(2 / 7) + 1e-4 for k in before)
    assert cli("sample", run, run, "-i", "abcd", "-b", 3, "--coverage-penalty", 0.4).stdout.count("\n") == 1  # ensembles
    refused = cli("sample", run, "-i", "abcd", "-b", 1, "--coverage-penalty", 0.4, ok=False)
    assert refused.exit_code == 2 and "ranks the hypotheses of a beam: give beam_size > 1 with it" in refused.stderr
    # an input beside a longer one (padded in the batch) is ranked and scored as it is alone
    options = ["-b", 3, "--n-best", 3, "--coverage-penalty", 0.4]
    alone = cli("sample", run, "-i", "abc", *options).stdout
    beside = cli("sample", run, "-i", "abcdefghij", "-i", "abc", *options).stdout.split("\n\n")
    assert beside[1].strip() == alone.strip()
    blind = tmp_path / "blind"
    cli("run", "reverse", *TINY["reverse"], "model.attention=none", "train.max_steps=1", "--run-dir", blind)
    refused = cli("sample", blind, "-i", "abcd", "-b", 2, "--coverage-penalty", 0.4, ok=False)
    assert "needs a model that attends to its source (model.attention)" in refused.stderr


# -- copy attention: model.copy ------------------------------------------------------------------

def names_data(folder, train=1500):
    """Pairs whose outputs carry the inputs' names: 'please call A and B' -> 'calling B then A';
    the test split's names never occur in training."""
    import random

    rng = random.Random(0)
    verbs = {"call": "calling", "meet": "meeting", "thank": "thanking", "invite": "inviting"}

    def rows(names, n):
        lines = ["source\ttarget"]
        for _ in range(n):
            a, b = rng.sample(names, 2)
            verb = rng.choice(sorted(verbs))
            lines.append(f"please {verb} {a} and {b}\t{verbs[verb]} {b} then {a}")
        return "\n".join(lines) + "\n"

    seen, unseen = [f"n{i}" for i in range(200)], [f"m{i}" for i in range(50)]
    for split, names, n in (("train", seen, train), ("valid", seen, 50), ("test", unseen, 100)):
        (folder / f"{split}.tsv").write_text(rows(names, n))
    return [f"dataset={{name: pairs, train: {folder}/train.tsv, valid: {folder}/valid.tsv, test: {folder}/test.tsv, "
            f"tokenize: whitespace}}", "model.embedding_size=16", "model.hidden_size=32", "train.batch_size=32",
            "train.eval_every=100", "train.optimizer={name: adam, lr: 0.01}", "sample.inputs=[]"]


def test_copy_attention_writes_words_it_never_saw(cli, tmp_path):
    keys = names_data(tmp_path)
    cli("run", "reverse", *keys, "train.max_steps=300", "model.copy=true", "--run-dir", tmp_path / "copy")
    cli("run", "reverse", *keys, "train.max_steps=20", "--run-dir", tmp_path / "plain")
    copying = json.loads(cli("evaluate", tmp_path / "copy", "--json").stdout)
    plain = json.loads(cli("evaluate", tmp_path / "plain", "--json").stdout)
    assert copying["exact_match"] >= 0.9, copying  # names never seen in training, written out
    assert plain["exact_match"] == 0.0  # a model without copying has no way to write them
    out = cli("sample", tmp_path / "copy", "-i", "please call m5 and m7", "-i", "please thank zed and n3",
              "-b", 3).stdout
    assert out == "calling m7 then m5\nthanking n3 then zed\n"
    assert cli("sample", tmp_path / "copy", tmp_path / "copy", "-i", "please call m5 and m7").stdout == \
        "calling m7 then m5\n"  # an ensemble of copying models copies
    refused = cli("sample", tmp_path / "copy", tmp_path / "plain", "-i", "please call n5 and n7", ok=False)
    assert "an ensemble combines models that all copy (model.copy) or none that does" in refused.stderr
    # exported, its runner copies as seqcli does: names it never saw, greedy, beam, coverage
    from seqcli.testing import check_export

    names = [f"q{i}" for i in range(30)] + [f"n{i}" for i in range(30)]  # unseen and seen names
    inputs = [f"please {verb} {a} and {b}" for verb, a, b in zip(["call", "meet", "thank", "invite"] * 15, names,
                                                                   reversed(names))]
    inputs += ["please call <eos> and m7", "please meet m2 and <bos>"]  # special tokens as words: copied as words
    for options in ({}, {"beam_size": 3, "n_best": 2}, {"beam_size": 3, "coverage_penalty": 0.2}):
        assert "the runner's outputs are seqcli's" in check_export(tmp_path / "copy", inputs, options)
    assert cli("sample", tmp_path / "copy", "-i", "please call <eos> and m7", "-i", "please meet m2 and <bos>"
               ).stdout == "calling m7 then <eos>\nmeeting <bos> then m2\n"
    cli("export", tmp_path / "copy", "-o", tmp_path / "exported")
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "a word outside it is read as <unk> and can be copied to the output (copy attention)" in card
    assert "Copy attention: `copy` holds each source position's output id" in card
    refused = cli("sample", tmp_path / "plain", "-i", "please call m5 and m7", ok=False)
    assert "has tokens the model never saw in training: 'm5', 'm7'" in refused.stderr


def test_copy_attention_is_checked(cli, tmp_path):
    keys = names_data(tmp_path, train=100)
    result = cli("run", "reverse", *keys, "model.copy=true", "model.attention=none", "train.max_steps=1",
                 "--run-dir", tmp_path / "blind", ok=False)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "model.copy: copies what the decoder attends to: give model.attention" in result.stderr


def test_copy_ids_and_copied_text():
    from seqcli.tasks.seq2seq import COPIED, copied_text, copy_ids
    from seqcli.vocab import Vocab

    target = Vocab(["<unk>", "<eos>", "<bos>", "calling", "then", "n3"], "whitespace")
    tokens = ["please", "call", "zed", "and", "n3", "zed"]
    assert copy_ids(tokens, target).tolist() == [6, 7, 8, 9, 5, 8]  # n3 is in the vocabulary; zed twice, one id
    special = ["call", "<eos>", "and", "<bos>", "<unk>"]  # special tokens written as words: copied as words
    assert copy_ids(special, target).tolist() == [6, 7, 8, 9, 10]
    assert copied_text([3, 7, 4, 9], target, special) == "calling <eos> then <bos>"
    assert copied_text([3, 8, 4, 5], target, tokens) == "calling zed then n3"
    assert copied_text([3, 8], target) == "calling " + chr(COPIED + 2)  # scored: one stand-in per source word


def test_one_task_serves_a_copying_and_a_plain_model_at_once():
    """What a model is (whether it copies, its vocabularies) is the model's: one task object
    batches for a copying model and a plain one in turn, and building a model changes nothing
    on the task."""
    from seqcli import registry
    from seqcli.api import CellSpec, Data
    from seqcli.tasks.seq2seq import Seq2Seq
    from seqcli.vocab import Vocab

    source = Vocab(["<unk>", "<eos>", "<bos>", "please", "call", "n3"], "whitespace")
    target = Vocab(["<unk>", "<eos>", "<bos>", "calling", "n3"], "whitespace")
    task, data = Seq2Seq(), Data({}, {"source": source, "target": target})
    before = dict(vars(task))
    cell = CellSpec(registry.load("cell", "gru"))
    copying = task.build_model(data, cell, embedding_size=4, hidden_size=6, copy=True)
    plain = task.build_model(data, cell, embedding_size=4, hidden_size=6)
    assert vars(task) == before
    examples = [{"source": torch.tensor(source.encode("please call n3")),
                 "target": torch.tensor(target.encode("calling n3"))}]
    copied = task.batch(copying, examples)
    assert copied["copy"].flatten().tolist() == [5, 6, 4]  # please, call: past the vocabulary; n3: its id
    assert "copy" not in task.batch(plain, examples)
    assert copied["y_out"].tolist() == task.batch(plain, examples)["y_out"].tolist() == [[3], [4], [target.eos]]
