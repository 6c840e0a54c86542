"""`seqcli serve`: the real server on 127.0.0.1, answering as `seqcli sample` does, batched
with answers equal to each request's alone, streaming, bounded, refusing bad requests in one
line, stopping cleanly on SIGTERM; and its page, driven in a real headless Chromium."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from seqcli.cli import app  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """`seqcli serve RUN` (or `command`: another server's command line) in a process of its
    own, on 127.0.0.1 and a free port."""

    def __init__(self, run, *options, command: list | None = None):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        runs = [str(r) for r in run] if isinstance(run, (list, tuple)) else [str(run)]
        command = command or [sys.executable, "-m", "seqcli", "serve", *runs]
        self.proc = subprocess.Popen([*map(str, command), "--port", str(self.port), *map(str, options)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while True:
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None and time.time() < deadline, self.proc.communicate()
            time.sleep(0.2)

    def call(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None, timeout=60):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, answer.read().decode(), dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, body=None, **kw):
        status, text, headers = self.call("POST", path, body, **kw)
        return status, json.loads(text) if text and headers.get("content-type", "").startswith("application/json") \
            else text

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-runs")
    for recipe, extra in (("reverse", ["train.max_steps=150", "train.eval_every=150", "model.hidden_size=64"]),
                          ("char-lm", ["train.max_steps=30", "train.eval_every=30", "model.hidden_size=64"])):
        result = CliRunner().invoke(app, ["run", recipe, *extra, "--run-dir", str(root / recipe)])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def reverse(runs):
    server = Server(runs / "reverse", "--batch-wait-ms", "20")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def lm(runs):
    server = Server(runs / "char-lm")
    yield server
    assert server.stop() == 0


def words(n, seed=0):
    import random

    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(n)]


def seqcli_sample(run, *args):
    result = CliRunner().invoke(app, ["sample", str(run), *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout.rstrip("\n")


def test_predict_answers_as_seqcli_sample_does(reverse, runs):
    inputs = words(12)
    status, answer = reverse.post("/v1/predict", {"inputs": inputs, "beam_size": 3, "n_best": 2})
    assert status == 200
    expected = seqcli_sample(runs / "reverse", *[a for t in inputs for a in ("--input", t)], "--beam-size", "3",
                             "--n-best", "2")
    assert "\n".join(answer["outputs"]).rstrip("\n") == expected  # n_best blocks end in a blank line
    status, answer = reverse.post("/v1/predict", {"inputs": inputs})  # the recipe's defaults (beam 4)
    assert "\n".join(answer["outputs"]) == seqcli_sample(runs / "reverse", *[a for t in inputs for a in ("-i", t)])


def test_every_surface_gives_the_same_typed_predictions(reverse, runs, tmp_path):
    """One inference contract: `seqcli sample --json`, `/v1/predict`'s "predictions",
    `seqcli.load(run).predictions` and the export runner's `--json` give each input's text
    (what `seqcli sample` prints) and its hypotheses (output, score) alike."""
    import subprocess
    import sys

    import seqcli
    from seqcli import export

    inputs = words(10, seed=3)
    options = ["--beam-size", "3", "--n-best", "2"]
    flags = [a for t in inputs for a in ("-i", t)]
    printed = seqcli_sample(runs / "reverse", *flags, *options)
    lines = [json.loads(line) for line in seqcli_sample(runs / "reverse", *flags, *options, "--json").splitlines()]
    status, answer = reverse.post("/v1/predict", {"inputs": inputs, "beam_size": 3, "n_best": 2})
    loaded = [p.to_data() for p in seqcli.load(runs / "reverse").predictions(inputs, beam_size=3, n_best=2)]
    folder = export.export(runs / "reverse", tmp_path / "exported", test=False)
    ran = subprocess.run([sys.executable, str(folder / "run.py"), *flags, *options, "--json"], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    runner = [json.loads(line) for line in ran]
    assert status == 200 and [line["input"] for line in lines] == [line["input"] for line in runner] == inputs
    assert "\n".join(line["text"] for line in lines).rstrip("\n") == printed  # the text is what sample prints
    for typed in (answer["predictions"], loaded, runner):
        assert [p["text"] for p in typed] == [line["text"] for line in lines]
        for p, line in zip(typed, lines):
            assert [h["output"] for h in p["hypotheses"]] == [h["output"] for h in line["hypotheses"]]
            assert len(p["hypotheses"]) == 2 and all(h["score"] < 0 for h in p["hypotheses"])
            assert [h["score"] for h in p["hypotheses"]] == pytest.approx([h["score"] for h in line["hypotheses"]],
                                                                          abs=1e-4)


def test_the_model_and_the_openapi_document_describe_the_tasks_options(reverse):
    status, text, _ = reverse.get("/v1/model")
    described = json.loads(text)
    assert status == 200 and described["task"] == "seq2seq" and described["takes_inputs"]
    beam = described["options"]["beam_size"]
    assert beam == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 4}
    assert described["pictures"] == ["attention_plot"] and "attention_plot" not in described["options"]
    assert described["metrics"]["step"] == 150 and "loss" in described["metrics"]
    assert described["versions"]["plugins"]["task"]["package"] == "seqcli"
    document = json.loads(reverse.get("/openapi.json")[1])
    schema = document["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["beam_size"]["maximum"] == 1000 and schema["required"] == ["inputs"]
    assert schema["additionalProperties"] is False


def test_batched_answers_equal_each_request_alone(reverse, runs):
    from seqcli import inference

    inputs = words(96, seed=3)
    alone = inference.load(runs / "reverse")
    expected = [alone.predict([t], beam_size=1)[0] for t in inputs]
    before = reverse.get("/metrics")[1]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda t: reverse.post("/v1/predict", {"inputs": [t], "beam_size": 1}), inputs))
    assert all(status == 200 for status, _ in answers)
    assert [a["outputs"][0] for _, a in answers] == expected
    after = reverse.get("/metrics")[1]
    batches = lambda text: int(next(line.split()[-1] for line in text.splitlines()  # noqa: E731
                                    if line.startswith("seqcli_batch_inputs_count")))
    assert batches(after) - batches(before) < 96  # some requests shared a batch


def test_bad_requests_get_one_line_and_the_next_is_served(reverse):
    cases = [
        (b'{"inputs": ["abc"', 400, "malformed JSON"),
        (json.dumps([1, 2]).encode(), 400, "the body must be a JSON object"),
        (json.dumps({"inputs": ["abc"], "beam_size": "four"}).encode(), 422, "beam_size: must be an integer"),
        (json.dumps({"inputs": ["abc"], "beem_size": 2}).encode(), 422, "beem_size: the seq2seq task does not take"),
        (json.dumps({"inputs": "abc"}).encode(), 422, "inputs: must be a non-empty list of strings"),
        (json.dumps({"inputs": ["a" * 10_001]}).encode(), 422, "inputs.0: 10,001 characters; at most 10,000"),
        (json.dumps({"inputs": ["ab"] * 257}).encode(), 422, "inputs: 257 inputs; one request takes at most 256"),
        (json.dumps({"inputs": ["abc"], "max_length": 5000}).encode(), 422, "max_length: 5000; this server writes"),
        (json.dumps({"inputs": ["abc"], "n_best": 5, "beam_size": 2}).encode(), 422, "n_best: must be <= beam_size"),
        (json.dumps({"inputs": ["aXc"]}).encode(), 422, "input 1 has tokens the model never saw in training: 'X'"),
        (json.dumps({"inputs": ["abc"], "attention_plot": "/etc/passwd.png"}).encode(), 422,
         "attention_plot: a file the server would write"),
        (json.dumps({"inputs": ["abc\udcff"]}).encode(), 422, "not valid UTF-8"),
    ]
    for raw, status, message in cases:
        got, text, headers = reverse.call("POST", "/v1/predict", raw=raw)
        assert got == status, (raw[:60], got, text)
        assert "\n" not in text and message in json.loads(text)["error"], (raw[:60], text)
        assert reverse.post("/v1/predict", {"inputs": ["abc"]})[0] == 200  # the next request is served
    assert reverse.post("/v1/generate", {"prime": "a"})[0] == 404
    import http.client

    for headers in ({"Content-Length": str(2 << 20)}, {"Transfer-Encoding": "chunked"}):  # over the limit
        connection = http.client.HTTPConnection(HOST, reverse.port, timeout=30)
        connection.putrequest("POST", "/v1/predict")
        for k, v in {"Content-Type": "application/json", **headers}.items():
            connection.putheader(k, v)
        connection.endheaders()
        if "Transfer-Encoding" in headers:  # no length given: the server counts what arrives
            chunk = b"x" * 65536
            try:
                for _ in range(20):
                    connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                connection.send(b"0\r\n\r\n")
            except OSError:
                pass  # it answered before the body was all sent
        answer = connection.getresponse()
        text = answer.read().decode()
        assert answer.status == 413 and json.loads(text)["error"] == "the body is over 1,048,576 bytes"
        connection.close()
    assert reverse.post("/v1/predict", {"inputs": ["abc"]})[0] == 200


def test_a_language_model_streams_its_tokens(lm, runs):
    status, answer = lm.post("/v1/generate", {"prime": "The ", "length": 60, "temperature": 0})
    expected = seqcli_sample(runs / "char-lm", "--prime", "The ", "--length", "60", "--temperature", "0")
    assert status == 200 and answer["outputs"] == [expected]
    status, text = lm.post("/v1/generate", {"prime": "The ", "length": 60, "temperature": 0, "stream": True})
    events = [e for e in text.split("\n\n") if e]
    pieces = [json.loads(e[6:])["pieces"] for e in events if e.startswith("data: {\"pieces\"")]
    assert len(pieces) == 61 and "".join(p[0] for p in pieces) == expected  # the prime, then one event a token
    assert events[-1].startswith("event: done")
    status, text = lm.post("/v1/generate", {"prime": "The ", "length": 30, "temperature": 0.8, "seed": 4,
                                            "num_samples": 2, "stream": True})
    streamed = ["", ""]
    for e in text.split("\n\n"):
        if e.startswith("data: {\"pieces\""):
            for i, piece in enumerate(json.loads(e[6:])["pieces"]):
                streamed[i] += piece
    direct = lm.post("/v1/generate", {"prime": "The ", "length": 30, "temperature": 0.8, "seed": 4, "num_samples": 2})
    assert streamed == direct[1]["outputs"]  # a seeded sample streams the same text
    metrics = lm.get("/metrics")[1]
    assert "seqcli_tokens_generated_total" in metrics and 'endpoint="/v1/generate",status="200"' in metrics


def test_health_answers_during_a_long_generation_and_a_gone_client_stops_it(lm):
    import http.client

    connection = http.client.HTTPConnection(HOST, lm.port, timeout=60)
    connection.request("POST", "/v1/generate", json.dumps({"prime": "a", "length": 2000, "temperature": 1.0,
                                                           "num_samples": 64, "stream": True}),
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    response.read(200)  # it is generating
    started = time.perf_counter()
    assert lm.get("/health")[0] == 200
    assert time.perf_counter() - started < 2.0
    tokens = lambda: int(next(line.split()[-1] for line in lm.get("/metrics")[1].splitlines()  # noqa: E731
                              if line.startswith("seqcli_tokens_generated_total")))
    connection.close()  # the client goes away mid-stream
    time.sleep(1.0)
    stopped_at = tokens()
    time.sleep(1.0)
    assert tokens() == stopped_at < 2000 * 64  # the generation stopped
    assert lm.post("/v1/generate", {"prime": "a", "length": 5})[0] == 200


def test_a_full_queue_is_503_with_retry_after(runs):
    server = Server(runs / "reverse", "--max-queue", "2", "--batch-wait-ms", "2000", "--max-batch", "1000")
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: server.call("POST", "/v1/predict", {"inputs": [t]}), words(8)))
        refused = [a for a in answers if a[0] == 503]
        assert refused and all(a[2].get("retry-after") == "1" and "queue is full" in a[1] for a in refused)
        assert any(a[0] == 200 for a in answers)
    finally:
        assert server.stop() == 0


def test_sigterm_lets_the_request_in_flight_finish(runs):
    server = Server(runs / "char-lm")
    result = {}
    request = threading.Thread(target=lambda: result.update(answer=server.post(
        "/v1/generate", {"prime": "a", "length": 2000, "num_samples": 32, "temperature": 1.0})))
    request.start()
    time.sleep(1.0)  # the generation is under way
    assert server.stop() == 0
    request.join()
    status, answer = result["answer"]
    assert status == 200 and len(answer["outputs"]) == 32 and len(answer["outputs"][0]) == 2001


def test_an_api_key_is_required_where_asked_and_compared_whole(runs, tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret-key\n")
    server = Server(runs / "reverse", "--api-key-file", key)
    try:
        assert server.post("/v1/predict", {"inputs": ["abc"]})[0] == 401
        assert server.post("/v1/predict", {"inputs": ["abc"]}, headers={"Authorization": "Bearer s3cret"})[0] == 401
        assert server.get("/metrics")[0] == 401
        assert server.post("/v1/predict", {"inputs": ["abc"]}, headers={"Authorization": "Bearer s3cret-key"})[0] == 200
        assert server.get("/health")[0] == 200 and server.get("/")[0] == 200
    finally:
        server.stop()
    assert "serving" in server.proc.stderr.read() if server.proc.stderr else True


def test_an_ensemble_is_served_as_seqcli_sample_decodes_it(runs, tmp_path):
    other = tmp_path / "reverse-seed-1"
    result = CliRunner().invoke(app, ["run", "reverse", "train.max_steps=60", "train.eval_every=60",
                                      "model.hidden_size=64", "train.seed=1", "--run-dir", str(other)])
    assert result.exit_code == 0, result.output
    server = Server([runs / "reverse", other])
    try:
        inputs = words(8, seed=3)
        status, answer = server.post("/v1/predict", {"inputs": inputs, "beam_size": 3, "n_best": 2})
        assert status == 200
        options = [*[a for t in inputs for a in ("-i", t)], "--beam-size", 3, "--n-best", 2]
        together = seqcli_sample(runs / "reverse", other, *options)
        alone = seqcli_sample(runs / "reverse", *options)

        def scored(text):  # (output, score) lines; the scores may differ in the last digit (threads)
            return [(line.split("\t")[0], float(line.split("\t")[1])) for line in text.splitlines() if line]

        served = scored("\n".join(answer["outputs"]))
        assert [t for t, _ in served] == [t for t, _ in scored(together)]
        assert all(abs(a - b) <= 2e-4 for (_, a), (_, b) in zip(served, scored(together)))
        assert scored(together) != scored(alone)  # the scores are the mean of two models' probabilities
        status, model, _ = server.get("/v1/model")
        members = json.loads(model)["ensemble"]
        assert [m["step"] for m in members] == [150, 60] and all("loss" in m["metrics"] for m in members)
    finally:
        assert server.stop() == 0
    lm = CliRunner().invoke(app, ["serve", str(runs / "reverse"), str(runs / "char-lm"), "--port", str(free_port())])
    assert lm.exit_code == 2 and lm.stderr.count("\n") == 1
    assert "an ensemble combines models of one task" in lm.stderr


def test_serve_mistakes_are_one_line(cli, runs, tmp_path, monkeypatch):
    result = cli("serve", tmp_path / "nothing", ok=False)
    assert result.exit_code == 2 and "no such checkpoint file or run directory" in result.stderr
    result = cli("serve", runs / "reverse", "--api-key-file", tmp_path / "missing", ok=False)
    assert result.exit_code == 2 and "--api-key-file" in result.stderr
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = cli("serve", runs / "reverse", ok=False)
    assert result.stderr == "error: seqcli serve needs FastAPI and uvicorn: pip install 'seqcli[serve]'\n"


# -- the page, in a real headless Chromium ------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("the page's test needs Chromium from the system's packages (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        yield launched
        launched.close()


def shots():
    """Where the page's screenshots go: SEQCLI_SCREENSHOTS (the README's come from there)."""
    return os.environ.get("SEQCLI_SCREENSHOTS")


def test_the_page_runs_the_model_in_a_browser(browser, reverse, runs):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(reverse.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#inputs", "abcdef\nhigfed\ncab")
    page.fill("#option-beam_size", "3")
    page.click("#submit")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
    expected = seqcli_sample(runs / "reverse", "-i", "abcdef", "-i", "higfed", "-i", "cab", "--beam-size", "3")
    assert page.text_content("#output") == expected
    assert page.locator("#attention canvas").count() == 3  # an attention map per input
    if shots():
        page.screenshot(path=os.path.join(shots(), "serve-seq2seq.png"), full_page=True)
    page.fill("#option-beam_size", "0")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "beam_size: must be >= 1 and <= 1000, got 0"
    assert all(url.startswith(reverse.url) for url in requests)  # nothing from another host
    page.close()


def test_the_page_streams_a_language_models_tokens(browser, lm, runs):
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(lm.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#inputs", "The ")
    page.fill("#option-length", "2000")  # long enough that the stream reaches the page in many reads
    page.fill("#option-temperature", "0")
    seen = []
    page.expose_function("seen", lambda text: seen.append(text))
    page.evaluate("new MutationObserver(() => window.seen(document.getElementById('output').textContent))"
                  ".observe(document.getElementById('output'), {childList: true, characterData: true, subtree: true})")
    page.click("#submit")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
    expected = seqcli_sample(runs / "char-lm", "--prime", "The ", "--length", "2000", "--temperature", "0")
    assert page.text_content("#output") == expected
    # the text grew on the page as the tokens came: the page showed earlier, shorter texts of the same output
    # (how many depends on how the browser batches the stream's reads: 121 to 289 in three runs here)
    partial = {text for text in seen if text and text != expected}
    assert len(partial) >= 2 and all(expected.startswith(text) for text in partial), sorted(map(len, partial))
    if shots():
        page.screenshot(path=os.path.join(shots(), "serve-lm.png"), full_page=True)
    page.close()
