"""`train.mlflow`: the recipe as params, every record as metrics, artifacts, resume into the same
MLflow run; against a local SQLite store, a file store, and a real `mlflow server` on
127.0.0.1, which, killed mid-run, costs a warning and never the training."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

TINY = ["model.embedding_size=8", "model.hidden_size=16", "model.num_layers=1", "train.batch_size=4",
        "train.seq_len=8", "train.max_steps=12", "train.eval_every=6", "train.log_every=3", "sample.length=5"]


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_run_logs_params_metrics_and_artifacts_and_resumes_into_the_same_run(cli, recipe, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = f"train.mlflow={{tracking_uri: '{store}', experiment: tests}}"
    result = cli("run", recipe, *TINY, tracked, "--run-dir", tmp_path / "run")
    assert "warning" not in result.stdout
    run_id = json.loads((tmp_path / "run" / "mlflow.json").read_text())["run_id"]
    client = MlflowClient(store)
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert logged.data.params["train.optimizer.lr"] == "0.01" and logged.data.params["model.cell.name"] == "lstm"
    ours = records(tmp_path / "run")
    for split in ("train", "valid"):
        history = client.get_metric_history(run_id, f"{split}/loss")
        assert [(m.step, round(m.value, 6)) for m in history] == \
            [(r["step"], round(r["loss"], 6)) for r in ours if r["split"] == split]  # the records metrics.jsonl holds
    assert {a.path for a in client.list_artifacts(run_id)} == {"recipe.yaml", "samples.txt"}
    cli("resume", tmp_path / "run", "train.max_steps=18")
    assert json.loads((tmp_path / "run" / "mlflow.json").read_text())["run_id"] == run_id
    steps = [m.step for m in client.get_metric_history(run_id, "valid/loss")]
    assert steps == [6, 12, 18] and client.get_run(run_id).info.status == "FINISHED"


def test_a_local_folder_store_and_an_exported_model_as_artifacts(cli, recipe, tmp_path, monkeypatch):
    """A file: URI is a folder holding a SQLite store (MLflow 3 no longer writes its folder
    store), with no escape hatch set."""
    pytest.importorskip("onnxruntime")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = (tmp_path / "mlruns").as_uri()
    result = cli("run", recipe, *TINY, f"train.mlflow={{tracking_uri: '{store}', export: true}}", "--run-dir",
                 tmp_path / "run")
    assert "warning" not in result.stdout
    run_id = json.loads((tmp_path / "run" / "mlflow.json").read_text())["run_id"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert len(client.get_metric_history(run_id, "train/loss")) == 4
    assert (tmp_path / "mlruns" / "artifacts").is_dir()
    assert client.get_experiment(client.get_run(run_id).info.experiment_id).name == "seqcli"
    exported = {a.path for a in client.list_artifacts(run_id, "export")}
    assert {"export/config.json", "export/run.py", "export/model", "export/README.md"} <= exported


def test_a_missing_extra_and_bad_options_are_one_line(cli, recipe, monkeypatch):
    result = cli("recipes", "validate", recipe, "train.mlflow={tracking_uri: 3, experimnt: x}", ok=False)
    assert "train.mlflow.experimnt: unknown key (did you mean 'experiment'?)" in result.stderr
    assert "train.mlflow.tracking_uri: must be a string, got 3" in result.stderr
    monkeypatch.setitem(sys.modules, "mlflow", None)
    result = cli("run", recipe, *TINY, "train.mlflow={}", ok=False)
    assert result.exit_code == 2 and result.stderr == ("error: train.mlflow: needs the mlflow package: "
                                                       "pip install 'seqcli[mlflow]'\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A real tracking server with a SQLite backend, on 127.0.0.1, for this test only."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{tmp_path / 'server.db'}", "--default-artifact-root", str(tmp_path / "art"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None and time.time() < deadline, "the mlflow server did not start"
        time.sleep(0.5)
    yield url, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_real_server_and_one_that_goes_away_mid_run(recipe, tmp_path, server):
    url, proc = server
    run = tmp_path / "run"
    args = [sys.executable, "-m", "seqcli", "run", str(recipe), *TINY, "train.max_steps=400", "train.eval_every=20",
            "train.log_every=5", f"train.mlflow={{tracking_uri: '{url}'}}", "--run-dir", str(run)]
    training = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    client = MlflowClient(url)
    while True:  # until the server holds some of the run's metrics
        if (run / "mlflow.json").is_file():
            run_id = json.loads((run / "mlflow.json").read_text())["run_id"]
            if len(client.get_metric_history(run_id, "train/loss")) >= 3:
                break
        assert training.poll() is None and time.time() < deadline, training.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the server goes away mid-run
    proc.wait()
    out, err = training.communicate(timeout=300)
    assert training.returncode == 0, err
    assert "warning: mlflow at " + url in out and "training goes on without it" in out
    assert out.count("warning: mlflow") == 1
    assert [r["step"] for r in records(run) if r["split"] == "valid"][-1] == 400  # the run trained to its end


def test_a_store_that_cannot_be_opened_is_one_warning_at_once(cli, recipe, tmp_path):
    started = time.time()
    result = cli("run", recipe, *TINY, f"train.mlflow={{tracking_uri: 'sqlite:///{tmp_path}/missing/m.db'}}",
                 "--run-dir", tmp_path / "run")
    assert time.time() - started < 60  # MLflow alone retries such a store for about 100 s
    warnings = [line for line in result.stdout.splitlines() if "mlflow" in line]
    assert len(warnings) == 1 and "its folder" in warnings[0] and "does not exist" in warnings[0]
    assert "Traceback" not in result.output and "ERROR" not in result.output


def test_a_store_that_hangs_costs_a_bounded_wait(cli, recipe, tmp_path, monkeypatch):
    from seqcli import tracking

    class Hanging:
        def __init__(self, tracking_uri=None):
            pass

        def get_experiment_by_name(self, name):
            time.sleep(30)

    monkeypatch.setattr(tracking, "require_mlflow", lambda: Hanging)
    monkeypatch.setattr(tracking.MLflow, "TIMEOUT", 1.0)
    started = time.time()
    result = cli("run", recipe, *TINY, f"train.mlflow={{tracking_uri: 'sqlite:///{tmp_path}/m.db'}}",
                 "--run-dir", tmp_path / "run")
    assert time.time() - started < 25
    assert "no answer within 1 s); training goes on without it" in result.stdout


def test_credentials_in_the_tracking_uri_are_used_and_never_written(cli, recipe, tmp_path, monkeypatch):
    import torch

    from seqcli import tracking

    seen = []

    class Refusing:
        def __init__(self, tracking_uri=None):
            seen.append(tracking_uri)
            raise RuntimeError("401 unauthorized")

    monkeypatch.setattr(tracking, "require_mlflow", lambda: Refusing)
    uri = "http://bob:s3cret@127.0.0.1:9/?token=t0ken"
    result = cli("run", recipe, *TINY, f"train.mlflow={{tracking_uri: '{uri}'}}", "--run-dir", tmp_path / "run")
    assert seen == [uri]  # the client was given the URI as written
    assert "http://***@127.0.0.1:9/?token=***" in result.stdout
    cli("export", tmp_path / "run", "-o", tmp_path / "exported")
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()] + \
              [p for p in (tmp_path / "exported").rglob("*") if p.is_file()]
    for path in written:
        data = path.read_bytes()
        assert b"s3cret" not in data and b"t0ken" not in data, path
    stored = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["recipe"]
    assert "s3cret" not in json.dumps(stored, default=str)
    assert "s3cret" not in result.output
