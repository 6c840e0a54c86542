import json

from seqcli.testing import check_dataset, cli
from seqcli_pytokens import PythonTokens, tag_lines


def test_tags_tokens_by_kind():
    lines = tag_lines("def f(x):\n    return x + 1  # comment\ns = 'a long string here'\n")
    assert lines[0] == (["def", "f", "(", "x", ")", ":"], ["KEYWORD", "NAME", "OP", "NAME", "OP", "OP"])
    assert lines[1] == (["return", "x", "+", "1"], ["KEYWORD", "NAME", "OP", "NUMBER"])
    assert lines[2][1] == ["NAME", "OP", "STRING"]


def test_registered_and_loads_real_source():
    rows = json.loads(cli("plugins", "list", "--json").stdout)
    assert {(r["kind"], r["name"], r["status"]) for r in rows if r["package"] == "seqcli-pytokens"} == {
        ("dataset", "python_tokens", "ok"), ("recipes", "*", "ok (1 recipe)")}
    assert "splits" in check_dataset(PythonTokens, {"max_files": 20})
    data = PythonTokens(max_files=20).load()
    assert len(data.splits["train"]) > 500 and data.splits["valid"] and data.splits["test"]
    assert {"KEYWORD", "NAME", "OP", "NUMBER", "STRING"} <= set(data.fields["tags"].names)


def test_a_tagger_learns_it_through_the_cli(tmp_path):
    cli("run", "python-tokens", "dataset.max_files=20", "train.max_steps=120", "train.eval_every=120",
        "--run-dir", tmp_path / "run")
    valid = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if '"valid"' in line][-1]
    assert valid["accuracy"] > 0.9, valid
    out = cli("sample", tmp_path / "run", "--input", "return x + 1").stdout.strip()
    assert out == "return/KEYWORD x/NAME +/OP 1/NUMBER"
