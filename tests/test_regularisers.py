"""AWD-LSTM's regularisers each do what they say; NT-ASGD evaluates and keeps the average."""

import json

import pytest
import torch

from seqcli.api import CellSpec
from seqcli.nn import recurrent as layer_module
from seqcli.nn.recurrent import Recurrent
from seqcli.cells.lstm import LSTM
from seqcli.nn.regularise import embedding_dropout, locked_dropout
from seqcli.train import checkpoint
from seqcli.optim import NTASGD


def test_a_locked_mask_is_the_same_at_every_step():
    torch.manual_seed(0)
    out = locked_dropout(torch.ones(50, 4, 8), 0.5, training=True)
    assert torch.equal(out, out[:1].expand_as(out))  # every step like the first
    assert set(out.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    assert torch.equal(locked_dropout(torch.ones(5, 4, 8), 0.5, training=False), torch.ones(5, 4, 8))


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    embed = torch.nn.Embedding(20, 6)
    tokens = torch.arange(20).repeat(3).view(-1, 1)  # every word three times
    out = embedding_dropout(embed, tokens, 0.5, training=True).view(3, 20, 6)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # a word is dropped everywhere or nowhere
    dropped = (out[0] == 0).all(-1)
    assert 0 < dropped.sum() < 20
    assert torch.allclose(out[0][~dropped], embed.weight[~dropped] * 2)


def test_weight_drop_keeps_the_fused_kernel_and_the_weights(monkeypatch):
    calls = []
    real = layer_module.FUNCTIONAL["lstm"]
    monkeypatch.setitem(layer_module.FUNCTIONAL, "lstm", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(layer_module, "scan", lambda *a: pytest.fail("ran the step-by-step loop"))
    rnn = Recurrent(CellSpec(LSTM), 4, 8, num_layers=2, weight_drop=0.5, locked_dropout=0.3)
    before = {k: v.clone() for k, v in rnn.state_dict().items()}
    x = torch.randn(6, 3, 4)
    rnn.train()
    torch.manual_seed(1)
    trained, _ = rnn(x)
    assert len(calls) == 2  # the fused kernel, one call per layer (a locked mask between them)
    trained.sum().backward()
    assert rnn.fused.weight_hh_l0.grad is not None  # the gradient reaches the undropped weights
    assert all(torch.equal(before[k], v) for k, v in rnn.state_dict().items())  # weights never changed in place
    rnn.eval()
    evaluated, _ = rnn(x)
    assert not torch.allclose(trained, evaluated)  # dropped in training only
    torch.manual_seed(1)
    rnn.train()
    rnn.weight_drop = 0.0
    rnn.locked_dropout = 0.0
    plain, _ = rnn(x)
    assert torch.allclose(plain, evaluated, atol=1e-6)


def test_weight_drop_needs_a_fused_cell(cli, recipe):
    result = cli("run", recipe, "model.cell={name: lstm}", "model.weight_drop=0.5", "--run-dir", "ok", ok=False)
    assert result.exit_code == 0  # the fused LSTM takes it
    from seqcli.errors import ConfigError

    class Looped(LSTM):
        @classmethod
        def fused_kernel(cls, **options):
            return None

    with pytest.raises(ConfigError, match="weight_drop: needs a cell with a fused kernel"):
        Recurrent(CellSpec(Looped), 4, 8, weight_drop=0.5)


def test_ntasgd_averages_from_the_trigger_and_swaps_for_evaluation():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = NTASGD([w], lr=1.0, nonmono=2)
    iterates = []

    def step(g):
        w.grad = torch.full((3,), float(g))
        opt.step()
        iterates.append(w.detach().clone())

    for loss in (5.0, 4.0, 3.0):  # improving: no averaging
        step(-1)
        assert not opt.observe(loss)
    step(-1)
    assert opt.observe(4.5)  # worse than the best before the last 2 evaluations
    for g in (-1, -2, -3):
        step(g)
    average = torch.stack(iterates[-3:]).mean(0)
    raw = w.detach().clone()
    with opt.averaged():
        assert torch.allclose(w, average)
    assert torch.equal(w, raw)  # training continues from its own weights
    state, averaging = opt.state_dict(), opt.average_state()
    w.data.copy_(average)  # a checkpoint's model holds the average ...
    again = NTASGD([w], lr=1.0, nonmono=2)
    again.load_state_dict(state)  # ... the optimizer state the running averages,
    again.load_average_state(averaging)  # and the averaging's state brings the training weights back
    assert torch.equal(w, raw) and again.averaging and again.history == opt.history
    again.finish()
    assert torch.allclose(w, average)


NTASGD_RUN = ["dataset.level=word", "task={name: language_model, ar: 2.0, tar: 1.0}",
              "model={cell: {name: lstm}, embedding_size: 16, hidden_size: 32, num_layers: 2, tie_weights: true, "
              "embedding_dropout: 0.1, input_dropout: 0.3, hidden_dropout: 0.2, output_dropout: 0.3, weight_drop: 0.3}",
              "train.optimizer={name: ntasgd, lr: 5, nonmono: 1}", "train.clip_grad_norm=0.25", "train.eval_every=10",
              "train.max_steps=80", "train.seq_len=8"]


def test_ntasgd_runs_save_the_average_and_resume_exactly(cli, recipe, tmp_path):
    cli("run", recipe, *NTASGD_RUN, "--run-dir", tmp_path / "whole")
    cli("run", recipe, *NTASGD_RUN, "train.max_steps=50", "--run-dir", tmp_path / "parts")
    cli("resume", tmp_path / "parts", "train.max_steps=80")
    whole, parts = (checkpoint.load(tmp_path / n, "last") for n in ("whole", "parts"))
    assert whole.average["kind"] == "ntasgd" and whole.average["state"]["averaging_since"] is not None  # it triggered
    assert all(torch.equal(whole.model[k], parts.model[k]) for k in whole.model)
    # the checkpoint's model is the average: evaluating it gives the logged validation loss
    logged = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in logged if r["split"] == "valid"][-1]
    result = cli("evaluate", tmp_path / "whole" / "checkpoints" / "last.pt", "--split", "valid", "--json")
    assert json.loads(result.stdout)["loss"] == pytest.approx(valid["loss"], rel=1e-5)
    raw = whole.average["state"]["weights"]
    assert any(not torch.equal(a, b) for a, b in zip(raw, [whole.model[k] for k in whole.model]))


def test_classify_and_tag_take_weight_drop(cli, tmp_path):
    for task in ("classify", "tag"):
        data = ("dataset={name: labeled, path: l.tsv}" if task == "classify" else
                "dataset={name: synthetic, problem: copy_memory, max_length: 3, delay: 4, train_size: 200, valid_size: 40}")
        if task == "classify":
            (tmp_path / "l.tsv").write_text("input\tlabel\n" + "".join(f"a b {'c' if i % 2 else 'd'}\t{i % 2}\n"
                                                                       for i in range(120)))
        run = tmp_path / task
        cli("run", "copy-memory", f"task.name={task}", data,
            "model={cell: {name: lstm}, hidden_size: 16, embedding_size: 8, weight_drop: 0.3}",
            "train.max_steps=20", "train.eval_every=20", "train.batch_size=16", "sample={}", "--run-dir", run)
        from seqcli import load

        model = load(run).model
        assert model.encoder.rnn.weight_drop == 0.3 and model.encoder.rnn.kernel == "lstm"
