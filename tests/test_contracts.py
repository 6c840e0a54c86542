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
    assert {"shapes", "batch independence", "masking", "state handling", "gradient flow", "serialisation"} <= set(passed)


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
