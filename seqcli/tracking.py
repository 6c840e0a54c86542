"""Where a run's records go besides metrics.jsonl and the console: TensorBoard and MLflow.

Each is a sink with `write(record)` and `close(status)`; the trainer hands every record
(training and validation alike) to each. MLflow (`train.mlflow`, `pip install
'seqcli[mlflow]'`) gets the resolved recipe as flattened params once, every record as
metrics (`train/loss`, `valid/perplexity`, ... at its step), and at the end the recipe, the
sample and, with `export: true`, the model's export as artifacts. The MLflow run's id is kept
in RUN_DIR/mlflow.json, so `seqcli resume` goes on logging into the same run. A tracking
server that stops answering costs one warning: the run goes on without it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from seqcli.runfolder import RunFolder



class TensorBoard:
    """The records as TensorBoard scalars under RUN_DIR/tensorboard."""

    def __init__(self, run_dir: Path, step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(RunFolder(run_dir).tensorboard), purge_step=step + 1 if step else None)

    def write(self, record: dict) -> None:
        for key, value in record.items():
            if key not in ("step", "split") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{record['split']}/{key}", value, record["step"])

    def close(self, status: str = "FINISHED") -> None:
        self.writer.close()


def require_mlflow():
    # a server that is gone answers in seconds, not after minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    import logging

    for name in ("mlflow", "alembic", "sqlalchemy"):  # a store's problem is seqcli's one warning, not their logs
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        from seqcli.errors import SeqcliError

        raise SeqcliError("train.mlflow: needs the mlflow package: pip install 'seqcli[mlflow]'") from None
    return MlflowClient


SECRETS: dict[str, str] = {}  # a redacted tracking URI -> the one given, in this process only
SECRET_QUERY = ("token", "password", "passwd", "secret", "key", "auth", "signature", "credential")


def redact(uri: str) -> str:
    """A tracking URI without its credentials (user:password@, token=... and the like): what
    seqcli writes (recipe.yaml, checkpoints, mlflow.json, model cards, MLflow params); the
    URI as given is kept in this process for the client (`SECRETS`)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if any(w in k.lower() for w in SECRET_QUERY) else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return uri
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    SECRETS[redacted] = uri
    return redacted


def client_uri(uri: str | None) -> str | None:
    """The URI the client uses: the one given, if this process saw it, else a redacted one with
    its placeholders dropped (credentials then come from MLflow's own MLFLOW_TRACKING_USERNAME,
    MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN)."""
    if uri is None or uri in SECRETS:
        return SECRETS.get(uri, uri)
    return uri.replace("***@", "")


def local_store(uri: str | None) -> tuple[str | None, str | None]:
    """(tracking URI, artifact folder) for MLflow. A folder (a file: URI or a plain path) is
    kept as a SQLite database inside it, FOLDER/mlflow.db, with artifacts in
    FOLDER/artifacts: MLflow 3 no longer writes its folder store."""
    from urllib.parse import unquote, urlsplit

    if uri is None or not (uri.startswith("file:") or ("/" in uri and ":" not in uri)):
        return uri, None
    folder = Path(unquote(urlsplit(uri).path) if uri.startswith("file:") else uri).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts")


def store_problem(uri: str | None) -> str | None:
    """Why a SQLite store cannot be written, found before MLflow retries it for minutes."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    path = Path(uri[len("sqlite:///"):])
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return f"{path} cannot be written"
        if not os.access(path.parent, os.W_OK | os.X_OK):
            return f"its folder {path.parent} cannot be written (SQLite needs it for its journal)"
        return None
    if not path.parent.is_dir():
        return f"its folder {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} cannot be written"
    return None


class MLflow:
    """One MLflow run per seqcli run; see the module's docstring. The constructor's keyword
    arguments are `train.mlflow`'s keys (checked like a plugin's); `start` opens the run."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "seqcli", run_name: str | None = None,
                 export: bool = False):
        """`tracking_uri`: a server (http://host:5000), a database (sqlite:///mlflow.db), a
        folder (file:///path), or None for MLflow's own default (MLFLOW_TRACKING_URI, else
        ./mlruns); `experiment`: its name; `run_name`: default, the run folder's name;
        `export`: also log the model exported as ONNX."""
        self.spec = {"tracking_uri": tracking_uri, "experiment": experiment, "run_name": run_name, "export": export}
        self.client, self.run_id, self.failed = None, None, False
        self.uri, self.artifacts_at = local_store(client_uri(tracking_uri))

    def start(self, run_dir: Path, recipe, warn, resume: bool) -> MLflow:
        self.run_dir, self.warn = Path(run_dir), warn
        self._call(lambda: self._open(recipe, resume), "could not start its run")
        return self

    def _open(self, recipe, resume: bool) -> None:
        from mlflow.entities import Param

        from seqcli.files import write_atomic

        problem = store_problem(self.uri)
        if problem:
            raise RuntimeError(problem)
        client = require_mlflow()(tracking_uri=self.uri)
        known = RunFolder(self.run_dir).mlflow
        if resume and known.is_file():  # the same MLflow run goes on
            self.run_id = json.loads(known.read_text(encoding="utf-8"))["run_id"]
            client.update_run(self.run_id, status="RUNNING")
            self.client = client
            return
        name = self.spec.get("experiment") or "seqcli"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment is not None else \
            client.create_experiment(name, artifact_location=self.artifacts_at and f"{self.artifacts_at}/{name}")
        run = client.create_run(experiment_id, run_name=self.spec.get("run_name") or self.run_dir.name,
                                tags={"seqcli.run_dir": str(self.run_dir.absolute()), "seqcli.task": recipe.task.name})
        self.client, self.run_id = client, run.info.run_id
        write_atomic(known, json.dumps({"tracking_uri": self.spec.get("tracking_uri"), "run_id": self.run_id}))
        params = [Param(k, v[:6000]) for k, v in flatten(recipe.to_data()).items()]
        for i in range(0, len(params), 100):  # the tracking API takes 100 params a call
            client.log_batch(self.run_id, params=params[i : i + 100])

    TIMEOUT = 30.0  # seconds one MLflow call may take before the sink gives up on the store

    def _call(self, action, what: str) -> None:
        """Run an MLflow call, for at most TIMEOUT seconds (in a thread of its own, which a
        store that hangs leaves behind); the first failure is one warning, and the sink stops
        there."""
        import threading

        if self.failed:
            return
        outcome: list = []

        def run():
            try:
                action()
                outcome.append(None)
            except Exception as exc:  # noqa: BLE001 - any client or server error: training goes on
                outcome.append(exc)

        worker = threading.Thread(target=run, name="seqcli-mlflow", daemon=True)
        worker.start()
        worker.join(self.TIMEOUT)
        if outcome and outcome[0] is None:
            return
        self.failed = True
        if not outcome:
            why = f"no answer within {self.TIMEOUT:g} s"
        else:
            exc = outcome[0]
            while exc.__cause__ is not None or (exc.__context__ is not None and not str(exc).strip()):
                exc = exc.__cause__ or exc.__context__  # the store's own words, not a wrapper's
            text = str(exc).strip()
            why = next((line for line in text.splitlines() if line.strip() and not line.startswith("(raised")),
                       type(exc).__name__)[:200]
        self.warn(f"warning: mlflow at {self.spec.get('tracking_uri') or 'the default tracking URI'} {what} "
                  f"({why}); training goes on without it")

    def write(self, record: dict) -> None:
        if self.failed:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"{record['split']}/{k}", float(v), now, int(record["step"])) for k, v in record.items()
                   if k not in ("step", "split") and isinstance(v, (int, float)) and not isinstance(v, bool)]
        self._call(lambda: self.client.log_batch(self.run_id, metrics=metrics), "stopped answering")

    def artifacts(self, *paths: Path) -> None:
        """Files (and folders, as folders) into the run's artifacts."""
        for path in map(Path, paths):
            if path.is_dir():
                self._call(lambda p=path: self.client.log_artifacts(self.run_id, str(p), p.name), f"did not take {path.name}")
            elif path.is_file():
                self._call(lambda p=path: self.client.log_artifact(self.run_id, str(p)), f"did not take {path.name}")

    def close(self, status: str = "FINISHED") -> None:
        self._call(lambda: self.client.set_terminated(self.run_id, status), "did not close its run")


def flatten(data, prefix: str = "") -> dict[str, str]:
    """A recipe as MLflow params: dotted keys, values as text."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(data) if not isinstance(data, str) else data}
