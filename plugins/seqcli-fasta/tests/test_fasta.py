import json

import pytest
import torch

from seqcli.api import DataError
from seqcli.testing import check_dataset, check_export, check_task, cli
from seqcli_fasta import Fasta, Regress, read_fasta
from seqcli_fasta.data import make_oligos


@pytest.fixture
def oligos(tmp_path):
    path = tmp_path / "oligos.fasta"
    make_oligos(path, n=600, seed=1)
    return path


def test_the_dataset_and_task_pass_the_seqcli_kits(oligos):
    assert {"splits", "fields serialisable", "deterministic"} <= set(check_dataset(Fasta, {"path": oligos, "target": "tm"}))
    data = Fasta(path=oligos, target="tm").load()
    report = check_task(Regress, data, model={"hidden_size": 32}, cell="lstm", steps=60, batch_size=32,
                        sample={"inputs": ["ACGT", "GGCCGGCC"], "precision": 2})
    assert {"training lowers the loss", "batching independence and eval_batches", "shard covers a batch once",
            "sample", "serialisation"} <= set(report)


def test_malformed_fasta_names_the_file_and_line(tmp_path):
    cases = {">a tm=1\nACGT\n>b\nACGT\n": ":3: header has no tm=NUMBER (it has: none)",
             ">a tm=hot\nACGT\n": ":1: tm='hot' is not a number",
             ">a tm=nan\nACGT\n": ":1: tm=nan is not a finite number",
             "ACGT\n>a tm=1\n": ":1: sequence data before the first '>' header",
             ">a tm=1\nAC GT1\n": ":2: a sequence line may hold letters only",
             ">a tm=1\n>b tm=2\nACGT\n": ":1: record 'a' has no sequence"}
    for text, message in cases.items():
        path = tmp_path / "bad.fasta"
        path.write_text(text)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_fasta(path, "tm")


def test_the_shipped_recipe_learns_and_its_options_reach_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe's data file is found beside the recipe, not here
    assert "oligo-tm" in cli("recipes", "list").stdout
    cli("run", "oligo-tm", "train.max_steps=300", "train.eval_every=300", "--run-dir", tmp_path / "run")
    valid = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if '"valid"' in line][-1]
    # the temperatures spread 20-120 C with a standard deviation near 12: predicting the mean scores MAE ~10
    assert valid["mae"] < 3.0, valid
    samples = (tmp_path / "run" / "samples.txt").read_text()
    assert "ACGTACGTAC\t" in samples and samples.split("\n")[0].endswith(" C")
    out = cli("sample", tmp_path / "run", "--input", "GGGGCCCCGGGGCCCC", "--precision", "3", "--unit", "deg").stdout
    value, unit = out.split()
    assert unit == "deg" and len(value.split(".")[1]) == 3 and abs(float(value) - 64) < 8  # Wallace: 16 x 4 = 64
    helped = cli("sample", tmp_path / "run", "--help").stdout
    assert "--precision" in helped and "--unit" in helped and "Options of the regress task" in helped
    loose = json.loads(cli("evaluate", tmp_path / "run", "--json", "--tolerance", "5").stdout)
    tight = json.loads(cli("evaluate", tmp_path / "run", "--json", "--tolerance", "0.5").stdout)
    assert loose["within"] > tight["within"] and loose["mae"] == tight["mae"]
    bad = cli("sample", tmp_path / "run", "--input", "ACGU", ok=False)
    assert bad.exit_code == 2 and "input 1 has tokens the model never saw in training: 'U'" in bad.stderr


def test_a_trained_model_loads_in_three_lines(tmp_path):
    import seqcli

    cli("run", "oligo-tm", "train.max_steps=30", "train.eval_every=30", "--run-dir", tmp_path / "run")
    model = seqcli.load(tmp_path / "run")
    assert len(model.predict(["ACGT", "GGGCCC"], precision=0)) == 2
    assert torch.isfinite(torch.tensor(model.evaluate(split="test", tolerance=2.0)["mae"]))


def test_exports_and_its_runner_agrees(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    cli("run", "oligo-tm", "train.max_steps=30", "train.eval_every=30", "--run-dir", tmp_path / "run")
    sequences = ["ACGTACGTAC", "GGGGCCCCGGGGCCCC", "ATATATATATATATATATAT", "GATTACA"]
    assert "the runner's outputs are seqcli's" in check_export(tmp_path / "run", sequences, {"precision": 3})
    cli("export", tmp_path / "run", "-o", tmp_path / "exported")
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "Not applied by `run.py`: `precision`, `unit` (the task's own;" in card  # its outputs are plain numbers
