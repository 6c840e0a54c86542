"""What is deprecated, in one place, each with the seqcli version that removes it: modules that
moved (MOVED), recipe keys that were renamed (RENAMED) and plugin contract forms a newer API
version replaced (FORMS). An old name keeps working, with one warning naming the new one, until
that version; `tests/test_public_surface.py` fails once a version is due."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings


class SeqcliDeprecation(FutureWarning):
    """Something a user or a plugin author wrote (a recipe key, a plugin form) that a later
    seqcli drops. A FutureWarning, so Python shows it by default; `seqcli` prints it as one
    line."""


#: Modules that moved, still importable by their old names for at least one minor version,
#: with a DeprecationWarning that says what to use instead (the stable module, or the recipe
#: key, that holds what the old module offered) and where the module went: old name -> (new
#: name, what to use instead, the version that drops the old one). The public surface
#: (seqcli.api, seqcli.layers, seqcli.testing, seqcli.load) keeps its names; a test lists it
#: and checks this table covers every move.
MOVED = {
    "seqcli.data.vocab": ("seqcli.vocab", "import Vocab, Labels and Numeric from seqcli.api", "0.7"),
    "seqcli.tasks.base": ("seqcli.layers", "import ExampleTask, require, encode_input and user_batch from "
                                           "seqcli.layers", "0.7"),
    "seqcli.cells.layer": ("seqcli.nn.recurrent", "import Recurrent from seqcli.layers", "0.7"),
    "seqcli.cells.init": ("seqcli.nn.init", "initialisation is the recipe's model.init (a Cell says its gates "
                                            "through seqcli.api.Cell)", "0.7"),
    "seqcli.train.optim": ("seqcli.optim", "optimizers and schedules are the recipe's train.optimizer and "
                                           "train.scheduler", "0.7"),
    "seqcli.train.tracking": ("seqcli.tracking", "MLflow is the recipe's train.mlflow", "0.7"),
    "seqcli.cli.bulk": ("seqcli.predict", "predict with seqcli.load(run).predict, or seqcli sample --input-file",
                        "0.7"),
}

#: Recipe keys that were renamed: "section.old" -> ("section.new", the version that drops the
#: old name). A recipe (or an override) with the old key loads as if it had the new one, with
#: one warning. No key has been renamed yet: a rename adds its entry here.
RENAMED: dict[str, tuple[str, str]] = {}

#: Plugin contract forms a newer API version replaced: "Class.attribute" -> (what replaces it,
#: the API version that drops the old form).
FORMS = {
    "Task.higher_is_better": ("Task.directions (a metric -> seqcli.api.HIGHER or LOWER)", "2.0"),
}


def warn(message: str) -> None:
    warnings.warn(message, SeqcliDeprecation, stacklevel=3)


def rename_keys(data: dict, origins) -> list[str]:
    """Move each renamed key of a read recipe (`data`, with `origins`: where each key was
    written) to its new name, with one warning naming the new key. Returns the problems: a
    recipe that gives both names."""
    problems = []
    for old, (new, until) in RENAMED.items():
        section, key = old.split(".", 1)
        block = data.get(section)
        if not isinstance(block, dict) or key not in block:
            continue
        where, new_key = origins.of(old), new.split(".", 1)[1]
        if new_key in block:
            problems.append(f"{where}: {old}: is the old name of {new}, which the recipe also gives "
                            f"({origins.of(new)}): give {new} only")
            continue
        block[new_key] = block.pop(key)
        for path in [p for p in origins.places if p == old or p.startswith(old + ".")]:
            origins.places[new + path[len(old):]] = origins.places.pop(path)
        warn(f"{where}: {old} is renamed {new}; the old name goes in seqcli {until}")
    return problems


def form_used(owner: type, form: str) -> None:
    """A plugin class (`owner`) relies on a replaced contract form: one warning naming what
    replaces it."""
    instead, until = FORMS[form]
    warn(f"{owner.__module__}.{owner.__qualname__} uses {form}, which API {until} drops: declare {instead}")


class MovedModules:
    """An import finder and loader for the old names in MOVED: the module at its new home
    (the same object, its own __spec__ kept), with a DeprecationWarning."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        new, instead, until = MOVED[spec.name]
        warnings.warn(f"{spec.name} is deprecated: {instead} (the module moved to {new}, which is internal and may "
                      f"change); the old name goes in seqcli {until}", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self.own_spec = module.__spec__  # the import system sets __spec__ to the old name's: put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self.own_spec


def install() -> None:
    """Make the moved modules' old names importable (once per process)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())


def one_line(message, category, filename, lineno, file=None, line=None, _shown=warnings.showwarning) -> None:
    """`warnings.showwarning` for the seqcli command: its own deprecations as 'warning: ...'."""
    if issubclass(category, SeqcliDeprecation):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        _shown(message, category, filename, lineno, file, line)
