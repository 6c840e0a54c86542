import json

import torch

from seqcli.api import CellSpec
from seqcli.layers import Recurrent
from seqcli.testing import check_cell, cli
from seqcli_mingru import MinGRU


def test_passes_the_seqcli_cell_contract():
    assert "masking" in check_cell(MinGRU)
    passed = check_cell(MinGRU, {"parallel": "always"})
    assert "scan matches steps" in passed and "masking" in passed


def test_is_registered_with_its_recipe():
    rows = json.loads(cli("plugins", "list", "--json").stdout)
    mine = [r for r in rows if r["package"] == "seqcli-mingru"]
    assert {(r["kind"], r["name"], r["status"]) for r in mine} == {("cell", "mingru", "ok"),
                                                                   ("recipes", "*", "ok (1 recipe)")}
    assert "seqcli-mingru" in cli("recipes", "list").stdout


def test_parallel_scan_is_exact_over_long_sequences():
    torch.manual_seed(0)
    layer = Recurrent(CellSpec(MinGRU, {"parallel": "always"}), 8, 16)
    x = torch.randn(500, 4, 8)
    out, (h,) = layer(x)
    state = layer.initial_state(4, x)
    for t in range(500):
        step_out, state = layer.step(x[t], state)
    torch.testing.assert_close(step_out, out[-1], atol=1e-4, rtol=1e-4)
    assert torch.isfinite(out).all()


def test_learns_a_language_model_through_seqcli(tmp_path):
    corpus = tmp_path / "t.txt"
    corpus.write_text("the cat sat on the mat. the dog ran to the house.\n" * 200)
    cli("run", "mingru-lm", f"dataset.path={corpus}", "model.embedding_size=16", "model.hidden_size=64",
        "model.dropout=0", "train.batch_size=8", "train.seq_len=32", "train.max_steps=150", "train.eval_every=150", "train.log_every=1",
        "train.optimizer={name: adam, lr: 0.01}", "sample.length=20", "--run-dir", tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first_train = next(r for r in records if r["split"] == "train")
    valid = [r for r in records if r["split"] == "valid"][-1]
    # 16 characters: a model that learnt nothing scores about ln 16 = 2.8 nats
    assert first_train["loss"] > 2.0 and valid["loss"] < 1.0, (first_train, valid)
    assert cli("sample", tmp_path / "run", "--prime", "the ", "--length", "10").stdout.startswith("the ")
    try:  # a language model of this cell exports: its step is traced through MinGRU.step
        import onnxruntime, onnxscript  # noqa: F401
    except ImportError:
        return
    from seqcli.testing import check_export

    assert "the runner's outputs are seqcli's" in check_export(tmp_path / "run", ["the ", "a dog"], {"length": 20})
