"""Every built-in task's bundled recipe with 1,000 inputs of its kind and the sample options
worth comparing, shared by the tests that check outputs across paths (the export runner,
batch sizes, the server's batches)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli.cli import app

N = 1000
rng = np.random.default_rng(0)


def rows(n_rows, width, high=16):
    return "; ".join(" ".join(str(int(v)) for v in rng.integers(0, high, width)) for _ in range(n_rows))


def letters(low, high, alphabet="abcdefgh"):
    return "".join(rng.choice(list(alphabet), rng.integers(low, high + 1)))


def digit_images():
    from sklearn.datasets import load_digits

    return ["; ".join(" ".join(str(int(v)) for v in row) for row in image) for image in load_digits().images[:N]]


CASES = {  # recipe: (overrides, inputs, options compared)
    "reverse": ([], lambda: [letters(2, 9) for _ in range(N)],
                [{}, {"beam_size": 3, "n_best": 2}, {"beam_size": 3, "n_best": 2, "coverage_penalty": 0.4}]),
    "char-lm": (["model.hidden_size=32", "model.embedding_size=16"], None, None),
    "digits": ([], lambda: [rows(8, 8) for _ in range(N)], [{"n_best": 3}]),
    "copy-memory": ([], lambda: [letters(3, 12, "abcd") for _ in range(N)], [{}]),
    "seasonal": ([], lambda: ["; ".join(f"{v:.3f}" for v in rng.normal(size=24)) for _ in range(N)], [{}]),
    "digits-caption": ([], lambda: [rows(1, 64) for _ in range(N)], [{}, {"beam_size": 2}]),
    "digits-glimpses": ([], digit_images, [{}]),
    "digits-draw": ([], lambda: [str(i % 10) for i in range(N)], [{}]),
}



def train_cases(root) -> dict:
    """Each recipe of CASES trained for 30 steps in a folder under `root`: name -> run."""
    pytest.importorskip("sklearn")
    made = {}
    for recipe, (overrides, _, _) in CASES.items():
        result = CliRunner().invoke(app, ["run", recipe, "train.max_steps=30", "train.eval_every=30", *overrides,
                                          "--run-dir", str(root / recipe)])
        assert result.exit_code == 0, (recipe, result.output)
        made[recipe] = root / recipe
    return made
