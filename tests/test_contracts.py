"""Every registered cell passes the public contract checks in seqcli.testing."""

import pytest
import torch

from seqcli import registry
from seqcli.api import Cell
from seqcli.testing import check_cell

CELLS = [(name, {}) for name in registry.names("cell")] + [("rnn", {"nonlinearity": "relu"})]


@pytest.mark.parametrize("name,options", CELLS)
def test_registered_cells_pass_the_contract(name, options):
    passed = check_cell(registry.load("cell", name), options)
    assert {"shapes", "batch independence", "masking", "state handling", "gradient flow", "serialisation",
            "exports"} <= set(passed)


def test_the_checks_catch_a_broken_cell():
    class Leaky(Cell):
        """Mixes examples across the batch: breaks batch independence."""

        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.w = torch.nn.Linear(input_size, hidden_size)

        def project(self, x):
            return self.w(x)

        def step(self, u, state):
            return (torch.tanh(u + state[0].mean(0, keepdim=True)),)

    with pytest.raises(AssertionError, match="check_cell\\(Leaky\\): an example's outputs depend on the other examples"):
        check_cell(Leaky)

    class Stateless(Cell):
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.w = torch.nn.Linear(input_size, hidden_size)
            self.unused = torch.nn.Parameter(torch.zeros(3))

        def project(self, x):
            return self.w(x)

        def step(self, u, state):
            return (torch.tanh(u),)

    with pytest.raises(AssertionError, match="no finite, non-zero gradient reaches parameter .*unused"):
        check_cell(Stateless)


def test_a_cell_that_cannot_be_exported_fails_in_its_own_checks():
    class Branchy(Cell):
        """Asks a tensor for a Python number in its step: torch.export cannot trace that."""

        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.w = torch.nn.Linear(input_size, hidden_size)
            self.r = torch.nn.Linear(hidden_size, hidden_size)

        def project(self, x):
            return self.w(x)

        def step(self, u, state):
            if u.abs().max().item() >= 0:  # always true, but only known once the numbers are there
                return (torch.tanh(u + self.r(state[0])),)
            return (u,)

    with pytest.raises(AssertionError, match=r"check_cell\(Branchy\): torch.export cannot trace its step through "
                                             r"seqcli.layers.traceable, so seqcli export cannot export a model made "
                                             r"with it \(\w+: .+\)"):
        check_cell(Branchy)
    passed = check_cell(Branchy, export=False)  # everything else holds
    assert "gradient flow" in passed and "exports" not in passed


SMALL = {"train_size": 300, "valid_size": 40, "test_size": 20, "max_length": 5}
TASKS = [  # task, dataset options, sample options
    ("seq2seq", {"problem": "reverse", **SMALL}, {"inputs": ["abc", "ba"], "beam_size": 2}),
    ("generate", {"problem": "spell", "max_number": 99, **{k: v for k, v in SMALL.items() if k != "max_length"}},
     {"inputs": ["42"]}),
    ("tag", {"problem": "copy_memory", "delay": 3, **SMALL}, None),
    ("forecast", {"problem": "adding", **SMALL}, None),
]


@pytest.mark.parametrize("task,dataset,sample", TASKS, ids=[t[0] for t in TASKS])
def test_builtin_tasks_and_datasets_pass_the_kits(task, dataset, sample):
    from seqcli.testing import check_dataset, check_task

    synthetic = registry.load("dataset", "synthetic")
    assert {"splits", "fields serialisable", "deterministic"} <= set(check_dataset(synthetic, dataset))
    data = synthetic(**dataset).load()
    passed = check_task(registry.load("task", task), data, model={"hidden_size": 32}, sample=sample, steps=40)
    assert {"training lowers the loss", "batching independence and eval_batches", "serialisation"} <= set(passed)
    assert "shard covers a batch once" in passed and ("sample" in passed) == (sample is not None)


def test_the_text_dataset_passes_the_kit(tmp_path):
    from seqcli.testing import check_dataset

    (tmp_path / "t.txt").write_text("the cat sat on the mat.\n" * 50)
    assert "fields serialisable" in check_dataset(registry.load("dataset", "text"), {"path": str(tmp_path / "t.txt")})


def test_the_kits_catch_a_broken_dataset_and_task():
    from seqcli.api import Data, Dataset, Labels
    from seqcli.testing import check_dataset, check_task

    class NoValid(Dataset):
        def load(self):
            return Data(splits={"train": [1]}, fields={})

    with pytest.raises(AssertionError, match="check_dataset\\(NoValid\\): no 'valid' split"):
        check_dataset(NoValid)

    class Unstable(Dataset):
        calls = 0

        def load(self):
            Unstable.calls += 1
            return Data(splits={"train": [1], "valid": [2]}, fields={"label": Labels(["a", str(Unstable.calls)])})

    with pytest.raises(AssertionError, match="loading twice gives different splits or fields"):
        check_dataset(Unstable)

    Classify = registry.load("task", "classify")

    class Unmasked(Classify):
        """Pools over the padding too: an example's loss depends on its batch."""

        def build_model(self, data, cell, hidden_size: int = 16):
            model = super().build_model(data, cell, hidden_size=hidden_size, pooling="mean")
            forward = model.forward
            model.forward = lambda x, lengths: forward(x, torch.full_like(lengths, x.shape[0]))
            return model

    from seqcli.api import Vocab

    g = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(120):
        x = torch.randint(1, 4, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g)
        examples.append({"input": x, "label": torch.tensor(int(x[0] == 1))})
    data = Data(splits={"train": examples[:100], "valid": examples[100:]},
                fields={"input": Vocab(["<unk>", "a", "b", "c"], "char"), "label": Labels(["other", "a"])})
    with pytest.raises(AssertionError, match="depends on how examples are batched"):
        check_task(Unmasked, data)


FILES = {  # dataset: (file name, contents, options)
    "pairs": ("p.tsv", "source\ttarget\n" + "".join(f"{w}\t{w[::-1]}\n" for w in ["abc", "hello", "cab", "olleh"] * 15),
              {}),
    "labeled": ("l.jsonl", "".join(f'{{"input": "{t}", "label": "{l}"}}\n' for t, l in [("good film", "pos"),
                                                                                      ("bad film", "neg")] * 30), {}),
    "conll": ("c.conll", "the DT\ncat NN\n\na DT\ndog NN\n\n" * 30, {}),
    "series": ("s.csv", "t,v\n" + "".join(f"{i},{i % 7}\n" for i in range(200)), {"window": 5, "horizon": 2}),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_file_datasets_pass_the_dataset_kit(name, tmp_path):
    from seqcli.testing import check_dataset

    file, text, options = FILES[name]
    (tmp_path / file).write_text(text)
    passed = check_dataset(registry.load("dataset", name), {"path": str(tmp_path / file), **options})
    assert {"splits", "fields serialisable", "info is plain data", "deterministic"} <= set(passed)
