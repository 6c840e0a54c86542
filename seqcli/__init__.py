"""seqcli: train, evaluate and sample recurrent sequence models from YAML recipes.

    import seqcli
    model = seqcli.load("runs/reverse")      # a run directory or a checkpoint file
    model.predict(["abc"])                   # see seqcli.inference.Model
"""

__version__ = "0.6.0"

from seqcli.deprecation import MOVED, install  # noqa: E402,F401 - seqcli.MOVED: the moved modules' table

install()


def load(path, which: str = "best", device: str = "cpu"):
    """A trained model from a run directory or checkpoint file (a list of them: one ensemble):
    `.sample(...)`, `.predict(inputs)`, `.evaluate(split=...)`. torch is imported here, not
    when seqcli is."""
    from seqcli.inference import load as _load

    return _load(path, which, device)
