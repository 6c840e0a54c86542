import torch

from seqcli import registry
from seqcli.api import CellSpec
from seqcli.cells import Recurrent
from seqcli.testing import check_cell
from seqcli_mingru import MinGRU


def test_passes_the_seqcli_cell_contract():
    assert "masking" in check_cell(MinGRU)
    passed = check_cell(MinGRU, {"parallel": "always"})
    assert "scan matches steps" in passed and "masking" in passed


def test_is_registered_under_its_name():
    info = registry.info("cell", "mingru")
    assert info.package == "seqcli-mingru"
    assert registry.load("cell", "mingru") is MinGRU


def test_parallel_scan_is_exact_over_long_sequences():
    torch.manual_seed(0)
    layer = Recurrent(CellSpec(MinGRU, {"parallel": "always"}), 8, 16)
    x = torch.randn(500, 4, 8)
    out, (h,) = layer(x)
    state = layer.initial_state(4, x)
    for t in range(500):
        step_out, state = layer.step(x[t], state)
    torch.testing.assert_close(step_out, out[-1], atol=1e-4, rtol=1e-4)
    assert torch.isfinite(out).all()


def test_learns_a_language_model_through_seqcli(tmp_path):
    from seqcli.data.datasets.text import TextDataset
    from seqcli.tasks.language_model import LanguageModel
    from seqcli.train.config import TrainConfig
    from seqcli.train.trainer import evaluate

    text = "the cat sat on the mat. the dog ran to the house.\n" * 200
    (tmp_path / "t.txt").write_text(text)
    torch.manual_seed(0)
    data = TextDataset(path=str(tmp_path / "t.txt")).load()
    task = LanguageModel()
    model = task.build_model(data, CellSpec(MinGRU), embedding_size=16, hidden_size=64, num_layers=2)
    config = TrainConfig(batch_size=8, seq_len=32)
    before = evaluate(task, model, data, "valid", config)["loss"]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    carry = None
    for step, batch in zip(range(150), task.batches(data, config, 0)):
        result = task.train_step(model, batch, carry)
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
        carry = result.carry
    after = evaluate(task, model, data, "valid", config)["loss"]
    assert before > 2.5 and after < 1.0, (before, after)
