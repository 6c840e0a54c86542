"""Recipe loading, overrides and validation: every problem, with file and line."""

import pytest

from seqcli.errors import RecipeError
from seqcli.recipe.load import bundled
from seqcli.recipe.resolve import load_recipe


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
dataset: {name: text, level: char}
task: {name: language_model}
model:
  cell: {name: gru}
  hidden_size: 32
train: {max_steps: 5}
"""


def problems(path, overrides=()):
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path), list(overrides))
    return info.value.problems


def test_defaults_are_filled_in(tmp_path):
    recipe = load_recipe(str(write(tmp_path, GOOD)))
    assert recipe.model["hidden_size"] == 32
    assert recipe.model["num_layers"] == 2  # the task's default
    assert recipe.train.optimizer["name"] == "adam"
    assert recipe.train.optimizer["lr"] == 0.002
    assert recipe.sample["length"] == 300


def test_overrides_are_typed_by_yaml(tmp_path):
    recipe = load_recipe(str(write(tmp_path, GOOD)), [
        "train.max_steps=7", "model.dropout=0.5", "model.cell.name=rnn", "model.cell.nonlinearity=relu",
        "train.optimizer={name: sgd, lr: 1}", "sample.prime=hello world"])
    assert recipe.train.max_steps == 7
    assert recipe.model["dropout"] == 0.5
    assert recipe.cell.as_data() == {"name": "rnn", "nonlinearity": "relu"}
    assert recipe.train.optimizer["lr"] == 1.0 and recipe.train.optimizer["momentum"] == 0.0
    assert recipe.sample["prime"] == "hello world"


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, GOOD.replace("hidden_size: 32", "hidden_sise: 32"))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:5: model.hidden_sise: unknown key")
    assert "did you mean 'hidden_size'" in problem


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, """\
dataset: {name: text, levle: char}
task: {name: language_model}
model:
  cell: {name: lstn}
  hidden_size: -4
  dropout: "lots"
train: {max_steps: 0, optimizer: {name: adamm}, batch_size: 2.5}
sampel: {}
""")
    found = problems(path)
    text = "\n".join(found)
    assert len(found) == 8, text
    assert f"{path}:1: dataset.levle: unknown key (did you mean 'level'?)" in text
    assert f"{path}:4: model.cell.name: unknown cell 'lstn' (did you mean 'lstm'?)" in text
    assert f"{path}:5: model.hidden_size: must be >= 1" in text
    assert f"{path}:6: model.dropout: must be a number" in text
    assert f"{path}:7: train.max_steps: must be >= 1" in text
    assert f"{path}:7: train.optimizer.name: unknown 'adamm' (did you mean 'adam'?)" in text
    assert f"{path}:7: train.batch_size: must be an integer" in text
    assert f"{path}:8: sampel: unknown section (did you mean 'sample'?)" in text


def test_override_problems_name_the_override(tmp_path):
    path = write(tmp_path, GOOD)
    (problem,) = problems(path, ["train.max_step=5"])
    assert problem.startswith("override 'train.max_step=5': train.max_step: unknown key (did you mean 'max_steps'?)")
    (problem,) = problems(path, ["trainmax_steps"])
    assert "expected key=value" in problem
    (problem,) = problems(path, ["train.max_steps.x=1"])
    assert "'train.max_steps' is not a mapping" in problem


def test_bad_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "dataset: {name: text\ntask: [\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem


def test_duplicate_keys_and_missing_sections(tmp_path):
    path = write(tmp_path, "dataset: {name: text}\ndataset: {name: text}\n")
    assert problems(path) == [f"{path}:2: dataset: duplicate key"]
    path = write(tmp_path, "dataset: {name: text}\n")
    found = problems(path)
    assert f"{path}: missing section 'task'" in found and f"{path}: missing section 'model'" in found


def test_empty_and_non_mapping_recipes(tmp_path):
    assert "the recipe is empty" in problems(write(tmp_path, ""))[0]
    assert "must be a mapping of sections" in problems(write(tmp_path, "- a\n- b\n"))[0]


def test_missing_data_file_is_caught_before_any_work(tmp_path):
    path = write(tmp_path, GOOD.replace("level: char", "path: nowhere.txt"))
    assert problems(path) == [f"{path}:1: dataset.path: file not found: nowhere.txt (looked in {tmp_path / 'nowhere.txt'})"]
    (tmp_path / "empty.txt").write_text("")
    path = write(tmp_path, GOOD.replace("level: char", "path: empty.txt"))
    assert problems(path) == [f"{path}:1: dataset.path: file is empty: empty.txt"]


def test_plugin_constructor_rejections_are_located(tmp_path, corpus):
    path = write(tmp_path, GOOD.replace("level: char", f"path: {corpus}, train: {corpus}"))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:1: dataset.train: give either path")


def test_impossible_values(tmp_path):
    path = write(tmp_path, GOOD)
    found = problems(path, ["model.dropout=1.0", "train.optimizer.lr=0", "train.device=gpu", "sample.top_p=2",
                            "model.cell.nonlinearity=sigmoid", "model.cell.name=rnn"])
    text = "\n".join(found)
    assert "model.dropout: must be >= 0 and < 1, got 1.0" in text
    assert "train.optimizer.lr: must be > 0" in text
    assert "train.device: must be auto, cpu, cuda, cuda:N or mps, got 'gpu'" in text
    assert "sample.top_p: must be > 0 and <= 1" in text
    assert "model.cell.nonlinearity: must be one of 'tanh', 'relu'" in text


@pytest.mark.parametrize("name", sorted(bundled()))
def test_bundled_recipes_validate(name):
    recipe = load_recipe(name)
    assert recipe.description


BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
j: &j [*i, *i, *i, *i, *i, *i, *i, *i, *i]
k: &k [*j, *j, *j, *j, *j, *j, *j, *j, *j]
"""


def test_yaml_bombs_and_deep_nesting_are_refused_at_once(tmp_path, cli):
    import time

    cases = {
        "bomb.yaml": (BOMB, "the YAML expands to more than 20,000 values"),
        "deep.yaml": ("a: " + "[" * 500 + "]" * 500 + "\n", "nested too deeply"),
        "recursive.yaml": ("a: &a {b: *a}\n", "a recursive alias"),
        "huge.yaml": ("a: " + "x" * (2 << 20) + "\n", "a recipe is at most 1,048,576"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        started = time.perf_counter()
        result = cli("recipes", "validate", tmp_path / name, ok=False)
        assert time.perf_counter() - started < 2, name
        assert result.exit_code == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, \
            (name, result.stderr)
    for override, message in (("sample.x=&a {b: *a}", "a recursive alias"),
                              ("sample.x=" + "[" * 500 + "]" * 500, "nested too deeply")):
        result = cli("recipes", "validate", "char-lm", override, ok=False)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_every_number_is_bounded_where_it_is_checked(cli):
    for override, message in (("train.seed=99999999999999999999999", "train.seed: must be >= 0 and <= 4294967295"),
                              ("sample.seed=-1", "sample.seed: must be >= 0"),
                              ("dataset.valid_fraction=1.0e+400", "dataset.valid_fraction: must be a finite number")):
        result = cli("recipes", "validate", "char-lm", override, ok=False)
        assert result.exit_code == 2 and message in result.stderr, (override, result.stderr)
