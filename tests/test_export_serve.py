"""An export folder's own server, `python serve.py`, run from a virtual environment that the
test builds from the folder's requirements-serve.txt, without torch or seqcli: it answers as
`seqcli serve` does on the same requests (outputs, typed predictions, errors, the model's
description, streaming, metrics, the page), on 127.0.0.1. And the folder's Dockerfile:
a slim base, no torch, serve.py as a user that is not root."""

import json
import os
import re
import subprocess
import venv

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from seqcli.cli import app  # noqa: E402
from test_serve import CHROMIUM, Server, words  # noqa: E402

SCORE = 1e-4  # the runner's scores against seqcli's (float32 sums in another order)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("served-runs")
    for recipe, extra in (("reverse", ["train.max_steps=150", "train.eval_every=150", "model.hidden_size=64"]),
                          ("char-lm", ["train.max_steps=30", "train.eval_every=30", "model.hidden_size=64"]),
                          ("digits", ["train.max_steps=40", "train.eval_every=40"])):
        result = CliRunner().invoke(app, ["run", recipe, *extra, "--run-dir", str(root / recipe)])
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(app, ["export", str(root / recipe), "-o", str(root / f"{recipe}-export")])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def bare_python(runs, tmp_path_factory):
    """A virtual environment with the folder's requirements-serve.txt alone: no torch, no seqcli."""
    where = tmp_path_factory.mktemp("serve-venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                              runs / "reverse-export" / "requirements-serve.txt"], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    for missing in ("torch", "seqcli"):
        probe = subprocess.run([python, "-c", f"import {missing}"], capture_output=True, text=True,
                               cwd=where.parent)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    return python


def pair(runs, python, recipe, *options):
    """`seqcli serve RUN` and the export folder's `python serve.py`, with the same options."""
    seqcli = Server(runs / recipe, *options)
    exported = Server(None, *options, command=[python, runs / f"{recipe}-export" / "serve.py"])
    return seqcli, exported


@pytest.fixture(scope="module")
def reverse(runs, bare_python):
    servers = pair(runs, bare_python, "reverse", "--batch-wait-ms", "20")
    yield servers
    for server in servers:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def lm(runs, bare_python):
    servers = pair(runs, bare_python, "char-lm", "--in-process", "--batch-wait-ms", "50")
    yield servers
    for server in servers:
        assert server.stop() == 0


def same_predictions(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert [h["output"] for h in a["hypotheses"]] == [h["output"] for h in b["hypotheses"]]
        for x, y in zip(a["hypotheses"], b["hypotheses"]):
            assert (x["score"] is None) == (y["score"] is None)
            assert x["score"] is None or abs(x["score"] - y["score"]) < SCORE


def test_the_folders_server_answers_as_seqcli_serve_does(reverse):
    seqcli, exported = reverse
    for body in ({"inputs": words(12), "beam_size": 3, "n_best": 2}, {"inputs": words(20, seed=1)},
                 {"inputs": words(7, seed=2), "beam_size": 1},
                 {"inputs": words(5, seed=3), "beam_size": 4, "length_penalty": 0.6, "coverage_penalty": 0.3}):
        (status, ours), (their_status, theirs) = exported.post("/v1/predict", body), seqcli.post("/v1/predict", body)
        assert status == their_status == 200, (ours, theirs)
        same_predictions(ours["predictions"], theirs["predictions"])
        if body.get("n_best", 1) == 1:
            assert ours["outputs"] == theirs["outputs"]


def test_requests_from_many_clients_are_batched_and_answered_as_each_alone(reverse):
    from concurrent.futures import ThreadPoolExecutor

    seqcli, exported = reverse
    bodies = [{"inputs": words(3, seed=s), "beam_size": 2} for s in range(24)]
    before = batches(exported)
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda b: exported.post("/v1/predict", b), bodies))
    for body, (status, answer) in zip(bodies, together):
        assert status == 200
        assert answer["outputs"] == seqcli.post("/v1/predict", body)[1]["outputs"]
    assert batches(exported) - before < 24, "no request shared a batch"


def batches(server) -> int:
    """The batches a server has decoded so far."""
    return int(re.search(r"^seqcli_batch_inputs_count (\d+)$", server.get("/metrics")[1], re.M).group(1))


def test_the_same_bad_requests_get_the_same_answers(reverse):
    seqcli, exported = reverse
    bodies = [{"inputs": "abc"}, {"inputs": []}, {"inputs": ["abc"], "beam_size": 0},
              {"inputs": ["abc"], "beam_size": "x"}, {"inputs": ["abc"], "beam_size": True},
              {"inputs": ["abc"], "top_p": 1.5}, {"inputs": ["abc"], "nonsense": 1},
              {"inputs": ["abc"], "max_length": 5000}, {"inputs": ["abc"] * 300}, {"inputs": ["a" * 20_000]},
              {"inputs": ["abc"], "length_penalty": -1}, {"inputs": ["abc"], "seed": -3}, [1, 2], "text",
              {"inputs": ["abc"] * 200, "beam_size": 1000, "max_length": 1000}]
    for body in bodies:
        (status, ours), (their_status, theirs) = exported.post("/v1/predict", body), seqcli.post("/v1/predict", body)
        assert status == their_status and status in (400, 413, 422), (body, ours, theirs)
        assert isinstance(ours["error"], str) and "\n" not in ours["error"] and "Traceback" not in ours["error"]
        assert ours.get("field") == theirs.get("field"), (body, ours, theirs)
    for headers, status in (({"Host": "evil.example"}, 400), ({"Origin": "http://evil.example"}, 403),
                            ({"Content-Type": "text/plain"}, 415)):
        assert exported.call("POST", "/v1/predict", {"inputs": ["abc"]}, headers=headers)[0] == status
        assert seqcli.call("POST", "/v1/predict", {"inputs": ["abc"]}, headers=headers)[0] == status
    assert exported.post("/v1/predict", {"inputs": ["abc"]})[0] == 200  # and the next is served


def test_the_model_is_described_as_seqcli_describes_it(reverse):
    seqcli, exported = reverse
    ours, theirs = json.loads(exported.get("/v1/model")[1]), json.loads(seqcli.get("/v1/model")[1])
    for key in ("task", "description", "takes_inputs", "streams", "limits", "inputs", "doc", "metrics"):
        assert ours[key] == theirs[key], key
    assert ours["checkpoint"]["step"] == theirs["checkpoint"]["step"]
    assert set(ours["options"]) == set(theirs["options"]) - set(theirs["pictures"])
    for name, schema in ours["options"].items():
        assert schema == {k: v for k, v in theirs["options"][name].items() if k != "required"}, name
    assert "torch" not in ours["versions"] and ours["versions"]["onnxruntime"]
    assert exported.get("/")[1] == seqcli.get("/")[1]  # the same page
    assert exported.get("/static/app.js")[1] == seqcli.get("/static/app.js")[1]
    openapi = json.loads(exported.get("/openapi.json")[1])
    assert set(openapi["paths"]) == set(json.loads(seqcli.get("/openapi.json")[1])["paths"])
    names = {line.split()[2] for line in exported.get("/metrics")[1].splitlines() if line.startswith("# TYPE")}
    assert names == {line.split()[2] for line in seqcli.get("/metrics")[1].splitlines() if line.startswith("# TYPE")}


def test_a_language_model_streams_from_the_folder_as_from_seqcli(lm):
    seqcli, exported = lm
    body = {"prime": "The ", "length": 50, "temperature": 0, "num_samples": 2}
    status, ours = exported.post("/v1/generate", body)
    assert status == 200 and ours["outputs"] == seqcli.post("/v1/generate", body)[1]["outputs"]
    assert ours["predictions"] == seqcli.post("/v1/predict", body)[1]["predictions"]
    streams = []
    for server in (exported, seqcli):
        status, text = server.post("/v1/generate", {**body, "stream": True})
        events = [e for e in text.split("\n\n") if e]
        streams.append([json.loads(e[6:])["pieces"] for e in events if e.startswith("data: {\"pieces\"")])
        assert status == 200 and events[-1].startswith("event: done")
    assert streams[0] == streams[1] and len(streams[0]) == 51  # the prime, then a token an event
    assert ["".join(p[i] for p in streams[0]) for i in range(2)] == ours["outputs"]
    status, text = exported.post("/v1/generate", {"prime": "The ", "length": 30, "temperature": 0.8, "seed": 4,
                                                  "stream": True})
    streamed = "".join(json.loads(e[6:])["pieces"][0] for e in text.split("\n\n") if e.startswith("data: {\"p"))
    assert streamed == exported.post("/v1/generate", {"prime": "The ", "length": 30, "temperature": 0.8,
                                                      "seed": 4})[1]["outputs"][0]  # seeded: the same text
    from concurrent.futures import ThreadPoolExecutor

    primes = ["The ", "And", "of the", "to", "in a", "He", "It was", "A"]
    before = batches(exported)
    with ThreadPoolExecutor(len(primes)) as pool:  # drawn together, each as it would be alone
        together = list(pool.map(lambda p: exported.post("/v1/generate", {"prime": p, "length": 40, "temperature": 0,
                                                                          "stream": True})[1], primes))
    assert batches(exported) - before < len(primes), "no streams were drawn together"
    for prime, text in zip(primes, together):
        streamed = "".join(json.loads(e[6:])["pieces"][0] for e in text.split("\n\n") if e.startswith("data: {\"p"))
        alone = seqcli.post("/v1/generate", {"prime": prime, "length": 40, "temperature": 0})[1]["outputs"][0]
        assert streamed == alone and text.rstrip().endswith("event: done\ndata: {}")
    status, answer = exported.post("/v1/generate", {"prime": "\u2603", "length": 5})
    assert status == 422 and "never saw in training" in answer["error"]
    assert "seqcli_tokens_generated_total" in exported.get("/metrics")[1]


def test_a_classifier_from_its_folder(runs, bare_python):
    import random

    rng = random.Random(0)
    seqcli, exported = pair(runs, bare_python, "digits", "--in-process")
    try:
        described = json.loads(exported.get("/v1/model")[1])
        assert described["inputs"]["kind"] == "numbers" and described["inputs"]["dim"] == 8
        inputs = ["; ".join(" ".join(str(rng.randint(0, 16)) for _ in range(8)) for _ in range(8)) for _ in range(9)]
        body = {"inputs": inputs, "n_best": 2}
        status, ours = exported.post("/v1/predict", body)
        assert status == 200 and len(ours["outputs"]) == len(inputs)
        same_predictions(ours["predictions"], seqcli.post("/v1/predict", body)[1]["predictions"])
        status, answer = exported.post("/v1/predict", {"inputs": ["1 2; 3"]})
        assert status == 422 and "numbers" in answer["error"]
    finally:
        assert exported.stop() == 0 and seqcli.stop() == 0


def test_serve_py_mistakes_are_one_line(runs, bare_python, tmp_path):
    folder = runs / "reverse-export"
    for args, says in ((["--max-batch", "0"], "--max-batch: must be >= 1"),
                       (["--api-key-file", str(tmp_path / "missing")], "--api-key-file"),
                       (["--port", "70000"], "--port: must be")):
        result = subprocess.run([bare_python, folder / "serve.py", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_api_key_guards_the_folders_server(runs, bare_python, tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    server = Server(None, "--api-key-file", key, "--in-process",
                    command=[bare_python, runs / "reverse-export" / "serve.py"])
    try:
        assert server.post("/v1/predict", {"inputs": ["abc"]})[0] == 401
        assert server.post("/v1/predict", {"inputs": ["abc"]}, headers={"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        assert server.stop() == 0  # SIGTERM: a clean exit


def test_the_page_runs_the_exported_model_in_a_browser(reverse):
    if CHROMIUM is None:
        pytest.skip("the page's test needs Chromium from the system's packages (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    from test_serve import BROWSER_ARGS

    seqcli, exported = reverse
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(exported.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert "onnxruntime" in page.text_content("#about")
        page.fill("#inputs", "abcdef\nhigfed\ncab")
        page.fill("#option-beam_size", "3")
        page.click("#submit")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
        expected = seqcli.post("/v1/predict", {"inputs": ["abcdef", "higfed", "cab"], "beam_size": 3})[1]
        assert page.text_content("#output") == "\n".join(expected["outputs"])
        browser.close()


def test_the_dockerfile_serves_the_folder_without_torch_as_a_user(runs):
    folder = runs / "reverse-export"
    lines = [line.strip() for line in (folder / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    instructions = [line.split()[0] for line in lines]
    assert re.fullmatch(r"FROM python:3\.\d+-slim", lines[0])
    needs = (folder / "requirements-serve.txt").read_text().split()
    assert not any(n.split(">")[0].split("=")[0] in ("torch", "seqcli") for n in needs)
    assert {"fastapi>=0.110", "onnxruntime>=1.18", "numpy>=1.24"} <= set(needs)
    assert "RUN pip install --no-cache-dir -r requirements-serve.txt" in lines
    user = lines[instructions.index("USER")].split()[1]
    assert user not in ("root", "0") and instructions.index("USER") > max(
        i for i, word in enumerate(instructions) if word in ("RUN", "COPY"))
    entry = json.loads(lines[instructions.index("ENTRYPOINT")].split(" ", 1)[1])
    assert entry[:2] == ["python", "serve.py"] and entry[entry.index("--host") + 1] == "0.0.0.0"
    ignored = (folder / ".dockerignore").read_text().split()
    assert "model.safetensors" in ignored  # the graphs hold the weights
    copied = [p for p in folder.rglob("*") if p.is_file() and p.name not in ignored and "__pycache__" not in p.parts]
    assert all(os.stat(p).st_mode & 0o004 for p in copied), "a file the image's user could not read"
