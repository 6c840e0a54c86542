"""The documentation's examples of training on your own files run as written (with tiny sizes)."""

import json
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["train.max_steps=4", "train.eval_every=4", "train.log_every=2", "train.batch_size=8", "model.hidden_size=16"]


def own_file_examples() -> list[list[str]]:
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    block = text.split("the `dataset:` section, for example:\n\n```bash\n", 1)[1].split("\n```", 1)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("seqcli ")]


def test_training_on_your_own_files_as_the_readme_shows(cli, tmp_path):
    words = ["xyzzy", "zyx", "yyzx", "xzy", "zzyx", "xy"] * 20  # letters the bundled recipe's sample inputs lack
    (tmp_path / "words.tsv").write_text("".join(f"{w}\t{w[::-1]}\n" for w in words))
    (tmp_path / "reviews.jsonl").write_text("".join(
        json.dumps({"text": t, "sentiment": s}) + "\n" for t, s in [("good film", "pos"), ("bad film", "neg")] * 40))
    conll = "the B\ncat I\nsat I\n\n" * 40
    (tmp_path / "train.conll").write_text(conll)
    (tmp_path / "dev.conll").write_text(conll[: len(conll) // 4])
    (tmp_path / "load.csv").write_text("temp,load\n" + "".join(f"{i % 24},{(i * 7) % 24}\n" for i in range(1200)))
    examples = own_file_examples()
    assert len(examples) == 4
    outputs = []
    for args in examples:
        if "--run-dir" not in args:
            args = [*args, "--run-dir", tmp_path / f"run-{args[1]}"]
        outputs.append(cli(*args, *TINY).stdout)
        assert "done in" in outputs[-1], (args, outputs[-1])
    # the bundled reverse recipe's sample inputs hold letters this data never had: each is
    # reported and skipped, and the finished training still exits 0
    assert "sample input 'abcdefg' skipped: input 1 has tokens the model never saw in training" in outputs[0]
    assert not (tmp_path / "runs" / "mine" / "samples.txt").exists()
