"""The README's two set-up commands stay true: CI runs the second one as written."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```bash\n")[1:3]
    return [b.split("\n```")[0].strip() for b in blocks]


def test_readme_opens_with_the_two_commands():
    run, test = setup_commands()
    assert "seqcli run char-lm" in run and "pip install torch==2.13.0" in run
    assert "pytest" in test and "[test]" in test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert setup_commands()[1] in ci.splitlines()


def test_the_recipe_key_table_names_every_key_seqcli_takes():
    """The README's recipe table lists every `train` key (TrainConfig's fields), every built-in
    task's model keys (its `build_model` arguments) and sample options (its `sample`
    signature, with what its parents declare)."""
    import dataclasses
    import re

    from seqcli import registry
    from seqcli.config import TrainConfig
    from seqcli.inference import sample_parameters
    from seqcli.schema import parameters

    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `(\w+)` \| (.*) \|$", line)
        if found and found.group(1) in ("dataset", "task", "model", "train", "sample"):
            rows[found.group(1)] = set(re.findall(r"`(\w+)", found.group(2)))
    missing = {"train": [f.name for f in dataclasses.fields(TrainConfig) if f.name not in rows["train"]]}
    for name in ("language_model", "classify", "tag", "seq2seq", "generate", "glimpse", "forecast", "draw"):
        task = registry.load("task", name)
        missing[name + " model"] = [k for k in parameters(task.build_model, ("self", "data", "cell"))
                                    if k not in rows["model"]]
        missing[name + " sample"] = [k for k in sample_parameters(task) if k not in rows["sample"]]
    assert {k: v for k, v in missing.items() if v} == {}
