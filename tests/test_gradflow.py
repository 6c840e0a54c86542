"""`seqcli gradflow`: the vanishing gradient of the vanilla RNN, the LSTM's flat one, and clipping."""

import json

import pytest
import torch

pytest.importorskip("matplotlib", reason="gradflow's plot needs the plot extra: pip install 'seqcli[plot]'")

SHORT = ["dataset.max_length=30", "dataset.train_size=3000"]


def settings(path):
    return {s["label"]: s for s in json.loads(path.read_text())["settings"]}


def test_rnn_gradient_vanishes_and_the_trained_lstm_carries_it(cli, tmp_path):
    out = tmp_path / "flow.png"
    result = cli("gradflow", *SHORT, "--steps", 150, "-o", out)
    assert out.stat().st_size > 10_000 and out.with_suffix(".json").is_file()
    rnn, lstm = settings(out.with_suffix(".json")).values()
    assert len(rnn["init"]) == len(lstm["trained"]) == 30
    # at initialisation both fade fast (the LSTM's forget gate starts near 0.5)
    assert rnn["init"][0] < 1e-4 * rnn["init"][-1] and lstm["init"][0] < 1e-4 * lstm["init"][-1]
    # after training the LSTM's gradient reaches the first step almost undiminished ...
    assert lstm["trained"][0] > 0.05 * lstm["trained"][-1]
    # ... while the vanilla RNN's is still gone within the 30 steps, and it has not learnt the task
    assert rnn["trained"][0] < 1e-2 * rnn["trained"][-1]
    assert lstm["loss_last"] < 0.2 < 0.8 < rnn["loss_last"]  # predicting the mean: about 1.0
    assert "distance" in result.stdout and "t0/tT trained" in result.stdout


def test_the_probe_measures_the_true_gradient_wrt_the_hidden_state():
    """dL/dh_t from the probe equals autograd's gradient for a hand-unrolled vanilla RNN."""
    from seqcli import registry
    from seqcli.api import CellSpec
    from seqcli.nn.recurrent import Recurrent
    from seqcli.gradflow import Probe

    torch.manual_seed(0)
    rnn = Recurrent(CellSpec(registry.load("cell", "rnn")), 3, 5)
    x = torch.randn(7, 2, 3)
    w_ih, w_hh, b_ih, b_hh = rnn.fused.all_weights[0]
    hs, h = [], torch.zeros(2, 5)
    for t in range(7):
        h = torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        h.retain_grad()
        hs.append(h)
    hs[-1].sum().backward()
    plain, _ = rnn(x)
    with Probe(rnn) as probe:
        out, _ = rnn(x)
    out[-1].sum().backward()
    for t in range(7):
        assert torch.allclose(probe.eps.grad[t], hs[t].grad, atol=1e-6)
    assert torch.allclose(out, plain, atol=1e-6)  # the probe adds zeros: the outputs are the layer's own
    assert "forward" not in vars(rnn)  # and it is gone after the block


def test_clipping_keeps_an_exploding_rnn_trainable(cli, tmp_path):
    out = tmp_path / "explode.png"
    cli("gradflow", *SHORT, "model.cell.nonlinearity=relu", "train.optimizer={name: sgd, lr: 0.05}", "--cell", "rnn",
        "--recurrent-scale", 3, "--clip", "none", "--clip", 1, "--steps", 40, "-o", out)
    free, clipped = settings(out.with_suffix(".json")).values()
    assert free["init"][0] > 100 * free["init"][-1]  # at initialisation the gradient grows going back in time
    assert free["diverged_at"] is not None and free["diverged_at"] <= 5
    assert clipped["diverged_at"] is None and clipped["loss_last"] < 2.0 and clipped["clipped_fraction"] > 0.5


def test_bad_input_is_one_line(cli, tmp_path):
    for args, message in [(("--clip", "big"), "--clip 'big': a positive number or 'none'"),
                          (("--recurrent-scale", "nan"), "--recurrent-scale nan: must be a positive number"),
                          (("reverse",), "unidirectional recurrent layer; set model.bidirectional=false"),
                          (("-o", tmp_path / "g.svg"), "give a name ending in .png")]:
        result = cli("gradflow", *args, "--steps", 1, ok=False)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    (tmp_path / "g.png").write_bytes(b"mine")
    result = cli("gradflow", "-o", tmp_path / "g.png", ok=False)
    assert "already exists" in result.stderr and (tmp_path / "g.png").read_bytes() == b"mine"
