"""Subword vocabularies (BPE, unigram) and the text metrics: WER, CER, BLEU, chrF, several references."""

import json
import random
import re
import sys

import pytest
import torch

from seqcli import vocab as V
from seqcli.metrics import text_scores

TEXT = ["the cat sat on the mat", "   indented  twice  spaced line", "a dog ran to the river, fast!",
        "the old man looked at a tree"] * 30


@pytest.mark.parametrize("level", ["bpe", "unigram"])
def test_pieces_give_the_text_back_exactly_and_train_the_same_twice(level):
    vocab = V.subword_vocab(TEXT, level, 60)
    again = V.subword_vocab(TEXT, level, 60)
    assert vocab == again and len(vocab) <= 60
    for line in TEXT[:4] + ["the dog sat on the river  "]:
        assert vocab.decode(vocab.encode(line)) == line
    assert vocab.unknown("the cat ate ü") == ["ü"]  # never seen in training: <unk>
    stored = V.field_from_state(json.loads(json.dumps(V.field_to_state(vocab))))
    assert stored == vocab and stored.encode(TEXT[2]) == vocab.encode(TEXT[2])


def test_a_bpe_language_model_trains_caches_and_samples_text(cli, recipe, tmp_path):
    result = cli("run", recipe, "dataset.level=bpe", "dataset.vocab_size=120", "train.max_steps=60",
                 "sample.prime=the cat", "--run-dir", tmp_path / "run")
    size = int(re.search(r"text vocabulary (\d+)", result.stdout).group(1))
    assert 40 < size <= 120  # pieces, learned up to vocab_size
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [m for m in metrics if m["split"] == "valid"]
    assert valid[-1]["loss"] < valid[0]["loss"]
    sample = (tmp_path / "run" / "samples.txt").read_text()
    assert sample.startswith("the cat") and "\u2581" not in sample and "<eos>" not in sample
    from seqcli.data.datasets.text import TextDataset

    corpus = recipe.parent / "corpus.txt"
    first = TextDataset(path=str(corpus), level="bpe", vocab_size=120).load()
    second = TextDataset(path=str(corpus), level="bpe", vocab_size=120).load()
    assert second.info.get("cached") and isinstance(second.fields["text"], V.Subword)
    assert second.fields["text"] == first.fields["text"]
    assert torch.equal(second.splits["valid"], first.splits["valid"])


def pig_latin_pairs(path, n=1500, seed=0):
    rng = random.Random(seed)
    subjects = ["the cat", "the dog", "a bird", "my friend", "the old man", "the teacher"]
    verbs = ["sat on", "looked at", "ran to", "jumped over", "painted"]
    objects = ["the mat", "the house", "a tree", "the river", "the garden"]

    def pig(word):
        v = next((i for i, c in enumerate(word) if c in "aeiou"), 0)
        return word[v:] + word[:v] + "ay"

    lines = ["source\ttarget"]
    for _ in range(n):
        s = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
        lines.append(f"{s}\t{' '.join(pig(w) for w in s.split())}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_pairs_run_with_bpe_on_both_sides_reports_bleu_and_chrf(cli, tmp_path):
    data = pig_latin_pairs(tmp_path / "pairs.tsv")
    recipe = tmp_path / "bpe.yaml"
    recipe.write_text(f"""\
dataset: {{name: pairs, path: {data}, tokenize: bpe, vocab_size: 100}}
task: {{name: seq2seq}}
model: {{cell: {{name: gru}}, embedding_size: 32, hidden_size: 64, attention: dot}}
train: {{batch_size: 32, max_steps: 250, eval_every: 250, log_every: 50, optimizer: {{name: adam, lr: 0.01}},
         eval_batches: 2}}
sample: {{inputs: ["the dog looked at the river"]}}
""")
    cli("run", recipe, "--run-dir", tmp_path / "run")
    scores = json.loads(cli("evaluate", tmp_path / "run", "--split", "valid", "--json").stdout)
    assert scores["bleu"] > 80 and scores["chrf"] > 80, scores
    assert scores["bleu_signature"].startswith("nrefs:") and "tok:13a" in scores["bleu_signature"]
    table = cli("evaluate", tmp_path / "run", "--split", "valid").stdout
    assert "bleu_signature: nrefs:" in table and "chrf_signature: nrefs:" in table
    out = cli("sample", tmp_path / "run", "--input", "a bird sat on the mat").stdout.strip()
    assert "\u2581" not in out and "  " not in out and len(out.split()) == 6  # detokenised words


def test_wer_cer_and_several_references():
    scores = text_scores(["a b c", "hello"], [["a x c"], ["help", "hello"]])
    assert scores["exact_match"] == 0.5  # the second matches one of its references
    assert scores["wer"] == pytest.approx(1 / 4)  # one word wrong in 3 + 1 reference words
    assert scores["cer"] == pytest.approx(1 / 10)  # 'b' -> 'x' over 5 + 5 reference characters
    assert "up to 2 per source" in scores["references"]
    assert scores["bleu_signature"].startswith("nrefs:var")
    single = text_scores(["the cat sat on the mat"], [["the cat sat on the mat"]])
    assert single["bleu"] == pytest.approx(100.0) and single["chrf"] == pytest.approx(100.0)
    assert "references" not in single


def test_subword_without_the_library_is_one_line(cli, recipe, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import fails
    result = cli("recipes", "validate", recipe, "dataset.level=bpe", ok=False)
    assert result.exit_code == 2 and "pip install 'seqcli[subword]'" in result.output
    assert "Traceback" not in result.output
