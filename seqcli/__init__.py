"""seqcli: train, evaluate and sample recurrent sequence models from YAML recipes."""

__version__ = "0.1.0"
