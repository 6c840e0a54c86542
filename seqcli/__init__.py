"""seqcli: train, evaluate and sample recurrent sequence models from YAML recipes.

    import seqcli
    model = seqcli.load("runs/reverse")      # a run directory or a checkpoint file
    model.predict(["abc"])                   # see seqcli.inference.Model
"""

import importlib
import importlib.machinery
import sys

__version__ = "0.5.0"

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


class _Moved:
    """An import finder and loader for the old names in MOVED: the module at its new home
    (the same object, its own __spec__ kept), with a DeprecationWarning."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        import warnings

        new, instead, until = MOVED[spec.name]
        warnings.warn(f"{spec.name} is deprecated: {instead} (the module moved to {new}, which is internal and may "
                      f"change); the old name goes in seqcli {until}", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self.own_spec = module.__spec__  # the import system sets __spec__ to the old name's: put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self.own_spec


if not any(isinstance(finder, _Moved) for finder in sys.meta_path):
    sys.meta_path.append(_Moved())


def load(path, which: str = "best", device: str = "cpu"):
    """A trained model from a run directory or checkpoint file (a list of them: one ensemble):
    `.sample(...)`, `.predict(inputs)`, `.evaluate(split=...)`. torch is imported here, not
    when seqcli is."""
    from seqcli.inference import load as _load

    return _load(path, which, device)
