"""The public surface keeps its promises: every listed name stays, or moves with a deprecation.

PUBLIC is the surface plugin authors and users are told they may import. A name leaves it only
through seqcli.MOVED (a module's old name keeps working, with a DeprecationWarning, for at least
one minor version) or DEPRECATED here (an attribute kept with a warning). Adding a public name
means listing it here too.
"""

import importlib
import re
import warnings

import pytest

import seqcli

PUBLIC = {
    "seqcli": ["load", "__version__"],
    "seqcli.api": [
        "API_VERSION", "CONDITION", "Cell", "CellSpec", "ConfigError", "Data", "DataError", "Dataset", "EXPORT_CONFIG",
        "EXPORT_GRAPHS", "EXPORT_KINDS",
        "Exported", "Figure", "File", "Flag", "Folder", "Graph", "HIGHER", "Hypothesis", "IMAGE", "INPUT", "INPUTS", "LABEL", "LOWER", "Labels",
        "Numeric", "Output", "Prediction", "Range", "SOURCE", "SOURCE_FIRST", "Samples", "Seed", "StepResult", "TAGS", "TARGET", "TARGET_COPY", "TEXT", "Task",
        "TrainConfig", "TrainingError", "Vocab", "device_of", "shard_examples",
    ],
    "seqcli.layers": [
        "EXAMPLE_BATCH", "IGNORE", "AttentionKind", "Bridge", "Decoder", "DecoderState", "Encoder", "ExampleTask",
        "MeanOutputs", "MeanProbabilities", "Recurrent", "Scale", "VocabEmbedding", "Writers", "batches", "beam_search", "draw", "edit_distance", "embedding_dropout", "encode_input",
        "locked_dropout", "macro_f1", "mask", "mean_probabilities", "nearest", "next_token", "pad", "pyplot", "require", "sample", "save",
        "sequence_inputs", "stack_inputs", "states_of", "text_scores", "traceable", "user_batch",
    ],
    "seqcli.testing": ["Report", "check_cell", "check_dataset", "check_export", "check_task", "cli"],
    # what `seqcli.load` returns, and the methods and attributes its README section shows
    "seqcli.inference.Model": ["sample", "predict", "evaluate", "recipe", "path", "packages", "plugins", "versions",
                               "task", "model", "fields", "checkpoint"],
}

#: attributes that left the public surface but still work, with a warning: "module.name" -> new home
DEPRECATED: dict[str, str] = {}


def resolve(dotted: str):
    """A module, or a class in one."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        module, _, attr = dotted.rpartition(".")
        return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("where", sorted(PUBLIC))
def test_every_public_name_is_there_or_deprecated(where):
    holder = resolve(where)
    for name in PUBLIC[where]:
        if f"{where}.{name}" in DEPRECATED:
            with pytest.warns(DeprecationWarning, match=DEPRECATED[f"{where}.{name}"]):
                getattr(holder, name)
            continue
        model_fields = getattr(holder, "__dataclass_fields__", {})
        assert hasattr(holder, name) or name in model_fields, (
            f"{where}.{name} is public and has gone without a deprecation entry (seqcli.MOVED or DEPRECATED)")


@pytest.mark.parametrize("module", ["seqcli.api", "seqcli.layers", "seqcli.testing"])
def test_the_listed_surface_is_the_whole_surface(module):
    """A name added to a stable module's __all__ is listed (and so guarded) here too."""
    exported = set(importlib.import_module(module).__all__)
    assert exported == set(PUBLIC[module]), (f"{module}.__all__ and PUBLIC differ: new {sorted(exported - set(PUBLIC[module]))},"
                                             f" gone {sorted(set(PUBLIC[module]) - exported)}")


@pytest.mark.parametrize("old", sorted(seqcli.MOVED))
def test_a_moved_module_keeps_working_with_a_warning_naming_what_to_use_instead(old):
    import sys

    new, instead, until = seqcli.MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated: {re.escape(instead)} \(the module moved to "
                                                rf"{new}, which is internal and may change\); the old name goes in "
                                                rf"seqcli {until}"):
        moved = importlib.import_module(old)
    assert moved is importlib.import_module(new) and moved.__spec__.name == new
    major, minor = (int(p) for p in seqcli.__version__.split(".")[:2])
    assert (major, minor) < tuple(int(p) for p in until.split(".")), f"{old}: its time is up; remove it"


def test_seqcli_data_vocab_still_gives_the_vocabulary_classes():
    """The name the docs once called stable: the classes are the ones seqcli.api exports."""
    import sys

    from seqcli.api import Labels, Numeric, Vocab

    sys.modules.pop("seqcli.data.vocab", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from seqcli.data.vocab import Labels as OldLabels, Numeric as OldNumeric, Vocab as OldVocab
    assert (OldVocab, OldLabels, OldNumeric) == (Vocab, Labels, Numeric)
    assert any("seqcli.data.vocab is deprecated" in str(w.message) for w in caught)


def test_a_renamed_recipe_key_still_loads_with_one_warning(monkeypatch, tmp_path):
    """An entry of seqcli.deprecation.RENAMED: a recipe (or an override) with the old key loads
    as if it named the new one, with one warning naming the new key and where the old one is;
    a recipe that gives both is refused in one line."""
    from seqcli import deprecation
    from seqcli.errors import RecipeError
    from seqcli.recipe.resolve import load_recipe

    monkeypatch.setitem(deprecation.RENAMED, "train.steps", ("train.max_steps", "9.0"))
    path = tmp_path / "old.yaml"
    path.write_text("dataset: {name: text}\ntask: {name: language_model}\nmodel: {cell: {name: lstm}}\ntrain:\n  steps: 7\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        recipe = load_recipe(str(path))
        overridden = load_recipe(str(path), ["train.steps=9"])
    assert recipe.train.max_steps == 7 and overridden.train.max_steps == 9
    shown = [str(w.message) for w in caught if w.category is deprecation.SeqcliDeprecation]
    assert shown == [f"{path}:5: train.steps is renamed train.max_steps; the old name goes in seqcli 9.0",
                     "override 'train.steps=9': train.steps is renamed train.max_steps; the old name goes in seqcli 9.0"]
    with pytest.raises(RecipeError, match=r"old.yaml:5: train.steps: is the old name of train.max_steps, which "
                                          r"the recipe also gives \(override 'train.max_steps=3'\): give "
                                          r"train.max_steps only"):
        load_recipe(str(path), ["train.max_steps=3"])


def test_a_replaced_plugin_form_still_works_with_one_warning():
    """A 1.3 task that says its main metric's direction with `higher_is_better` is still read
    right, with a warning naming what replaces it (API 1.4's `directions`)."""
    from seqcli import deprecation
    from seqcli.api import HIGHER, Task

    class Old(Task):
        main_metric, higher_is_better = "accuracy", True

    with pytest.warns(deprecation.SeqcliDeprecation, match=r"Old uses Task.higher_is_better, which API 2.0 "
                                                           r"drops: declare Task.directions"):
        assert Old.direction("accuracy") == HIGHER
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Task.direction("loss") is not None  # the built-in default is not a replaced form


def test_no_deprecation_has_outlived_its_version():
    from seqcli import deprecation
    from seqcli.api import API_VERSION

    version = tuple(int(p) for p in seqcli.__version__.split(".")[:2])
    for old, (new, until) in deprecation.RENAMED.items():
        assert version < tuple(int(p) for p in until.split(".")), f"{old}: its time is up; remove it"
    for form, (_, until) in deprecation.FORMS.items():
        assert int(API_VERSION.split(".")[0]) < int(until.split(".")[0]), f"{form}: its time is up; remove it"


def test_the_seqcli_command_prints_its_deprecations_as_one_line():
    import io

    from seqcli import deprecation

    out = io.StringIO()
    deprecation.one_line(deprecation.SeqcliDeprecation("a.yaml:3: train.x is renamed train.y"),
                         deprecation.SeqcliDeprecation, "resolve.py", 10, out)
    assert out.getvalue() == "warning: a.yaml:3: train.x is renamed train.y\n"
