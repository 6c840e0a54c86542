"""`model.init`: the initialisation schemes do what they say, on fused and plugin cells."""

import torch

from seqcli import build
from seqcli.api import Data
from seqcli.nn.init import initialise
from seqcli.nn.recurrent import Recurrent
from seqcli.cells.lstm import LSTM
from seqcli.api import CellSpec
from seqcli.recipe.resolve import load_recipe
from seqcli.vocab import Vocab


class LoopLSTM(LSTM):
    """The built-in LSTM cell without its fused kernel: it runs on seqcli's own loop, as a
    plugin cell does, and states its gates through the API."""

    @classmethod
    def fused_kernel(cls, **options):
        return None


def lm(recipe, *overrides):
    r = load_recipe(str(recipe), list(overrides))
    data = Data(splits={}, fields={"text": Vocab(["<unk>", "a", "b", "c"], level="char")})
    return build.model(build.task(r), data, r)


def test_uniform_draws_every_parameter_within_the_scale(recipe):
    model = lm(recipe, "model.init={name: uniform, scale: 0.05}")
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= 0.05 and values.abs().max() > 0.045
    assert values.std() > 0.02  # spread over the interval, not a constant


def test_orthogonal_recurrent_blocks_and_forget_bias(recipe):
    model = lm(recipe, "model.init={name: orthogonal, forget_bias: 1.0}", "model.num_layers=2")
    fused = model.rnn.fused
    for layer in range(2):
        w = getattr(fused, f"weight_hh_l{layer}")
        for block in w.detach().chunk(4, 0):  # each gate's block on its own is orthogonal
            assert torch.allclose(block @ block.T, torch.eye(32), atol=1e-5)
        bias = (getattr(fused, f"bias_ih_l{layer}") + getattr(fused, f"bias_hh_l{layer}")).detach().view(4, -1)
        assert torch.allclose(bias[1], torch.ones(32)) and bias[[0, 2, 3]].abs().max() == 0
    # other matrices are Xavier: bounded by sqrt(6 / (fan_in + fan_out))
    bound = (6 / (16 + 32)) ** 0.5
    assert fused.weight_ih_l0.abs().max() <= bound


def test_a_loop_cell_takes_part_through_its_declared_gates():
    layer = Recurrent(CellSpec(LoopLSTM), 3, 5, num_layers=1, bidirectional=True)
    initialise(layer, {"name": "orthogonal", "gain": 1.0, "forget_bias": 2.0})
    for cell in layer.cells:
        for block in cell.weight_hh.detach().chunk(4, 0):
            assert torch.allclose(block @ block.T, torch.eye(5), atol=1e-5)
        total = (cell.bias_ih + cell.bias_hh).detach().view(4, -1)
        assert torch.allclose(total[1], torch.full((5,), 2.0)) and total[0].abs().max() == 0


def test_forget_bias_without_a_forget_gate_is_one_line(cli, recipe):
    result = cli("run", recipe, "model.cell.name=gru", "model.init={name: default, forget_bias: 1}", "--run-dir", "r",
                 ok=False)
    assert result.exit_code != 0
    assert "model.init.forget_bias: no recurrent layer of this model has a forget gate" in result.output
    assert "Traceback" not in result.output


def test_default_leaves_the_layers_own_initialisation(recipe):
    torch.manual_seed(0)
    plain = lm(recipe)
    torch.manual_seed(0)
    same = lm(recipe, "model.init=default")
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), same.state_dict().values()))


def test_bad_init_keys_are_refused_with_the_recipe_line(cli, recipe):
    result = cli("recipes", "validate", recipe, "model.init={name: orthogonl}", ok=False)
    assert result.exit_code != 0 and "did you mean 'orthogonal'" in result.output
    result = cli("recipes", "validate", recipe, "model.init={name: uniform, scale: 0}", ok=False)
    assert "model.init.scale: must be > 0" in result.output
