"""Every seqcli command the README and the documentation's pages show runs, block by block,
in order, as a user would type it, with sizes made tiny. The two set-up commands are CI's own; `pip` and `pytest` lines are
test_scaffold's; the block on the user's own files is test_readme_examples'; lines with a
`...` placeholder are not commands."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import documentation

ROOT = Path(__file__).resolve().parent.parent
SHRINK = ["train.max_steps=4", "train.eval_every=4", "train.log_every=2", "train.batch_size=8",
          "model.hidden_size=16"]


def readme_blocks() -> list[list[str]]:
    """The `seqcli ...` commands of each shell block after the set-up commands, comments
    removed and `a && b` split."""
    blocks = []
    for block in documentation.bash_blocks():
        commands = []
        for line in block.splitlines():
            for command in line.split("  #")[0].strip().split(" && "):
                if command.startswith("seqcli ") and "..." not in command:
                    commands.append(command)
        if commands:
            blocks.append(commands)
    return blocks


def adapt(command: str) -> list[str]:
    """The command with tiny sizes: runs train 4 steps, resumes go 2 further, gradflow 3."""
    args = shlex.split(command)[1:]
    if args[:1] == ["run"]:
        args += SHRINK
    if args[:1] == ["resume"]:
        args = [a for a in args if not a.startswith("train.max_steps=")] + ["train.max_steps=6"]
    if args[:1] == ["sweep"] and args[1:2] not in (["resume"], ["show"]):
        searched = {a.partition("=")[0] for a in args if "(" in a}
        args += [o for o in SHRINK if o.partition("=")[0] not in searched]
        if "--trials" in args:
            args[args.index("--trials") + 1] = "2"
    if args[:1] == ["gradflow"]:
        args += ["--steps", "3"]
    if args[:1] == ["sample"] and "--length" in args:
        args[args.index("--length") + 1] = "20"
    return args


def test_every_readme_command_runs(cli, tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from sklearn.datasets import load_digits

    from seqcli import registry

    blocks = readme_blocks()
    ran, pictures = 0, []
    for number, commands in enumerate(blocks):
        folder = tmp_path / f"block{number}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        text = " ".join(commands)
        if "runs/y" in text:  # the tour overlays a second run
            cli("run", "char-lm", *SHRINK, "--run-dir", "runs/y")
        if "runs/quickstart" in text:  # the first set-up command's run
            cli("run", "char-lm", *SHRINK, "--run-dir", "runs/quickstart")
        if "images.txt" in text:  # written by the README's own python line just before
            (folder / "images.txt").write_text("".join(
                "; ".join(" ".join(f"{v / 16:.2f}" for v in row) for row in image) + "\n"
                for image in load_digits().images[-3:]))
        if "oligo-tm" in text and "regress" not in registry.names("task"):
            continue  # the example plugin seqcli-fasta is not installed here
        if "space.yaml" in text:  # the sweep block's space file
            (folder / "space.yaml").write_text("train.optimizer.lr: loguniform(1e-4, 1e-2)\n")
        if "inputs.txt" in text:  # a file of inputs for the bulk-prediction block
            (folder / "inputs.txt").write_text("abc\nhigh\n\nbead\n")
        if "words.tsv" in text:
            continue  # the user's own files: test_readme_examples.py writes them and runs this block
        for command in commands:
            args = adapt(command)
            if args[:1] == ["serve"]:
                continue  # a server runs until stopped: test_the_readme_serve_examples_run starts it
            if args[:1] == ["run"] and any("my_cell" in a for a in args):
                continue  # needs `pip install -e seqcli-my_cell` first (test_scaffold runs its tests)
            if "--nproc-per-node" in args:
                result = subprocess.run([sys.executable, "-m", "seqcli", *args], capture_output=True, text=True,
                                        timeout=300)
                assert result.returncode == 0, (command, result.stdout, result.stderr)
            else:
                result = cli(*args, ok=False)
                assert result.exit_code == 0, (command, args, result.stdout, result.stderr)
            ran += 1
        pictures += [folder / p for p in ("curves.png", "gradflow.png", "att.png", "glimpses.png", "strip.png")
                     if (folder / p).exists()]
    assert ran >= 35, ran
    assert {p.name for p in pictures} == {"curves.png", "gradflow.png", "att.png", "glimpses.png", "strip.png"}
    assert all(p.stat().st_size > 1000 for p in pictures)


def test_the_readme_serve_examples_run(cli, tmp_path, monkeypatch):
    """Each block that starts `seqcli serve`: its runs made (tiny), its servers started on free
    ports of 127.0.0.1, and its curl lines run against them, every one answered 200."""
    import shutil
    import socket
    import time
    import urllib.request

    pytest.importorskip("fastapi")
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    blocks = [b for b in documentation.bash_blocks() if "seqcli serve " in b]
    assert blocks
    servers, ran = [], 0
    monkeypatch.chdir(tmp_path)
    try:
        for block in blocks:
            ports = {}
            for line in block.splitlines():
                command = line.split("  #")[0].strip()
                args = shlex.split(command)
                if args[:2] == ["seqcli", "run"]:
                    if not Path(args[args.index("--run-dir") + 1]).exists():  # an earlier block's run serves
                        cli(*adapt(command))
                elif args[:2] == ["seqcli", "serve"]:
                    run = args[2]
                    if not Path(run).exists():
                        cli("run", "char-lm" if "quickstart" in run else "reverse", *SHRINK, "--run-dir", run)
                    written = args[args.index("--port") + 1] if "--port" in args else "8000"
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", 0))
                        ports[written] = str(s.getsockname()[1])
                    options = [a for a in args[3:] if a not in ("--port", written)]
                    proc = subprocess.Popen([sys.executable, "-m", "seqcli", "serve", run, *options, "--port",
                                             ports[written]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    servers.append(proc)
                    for _ in range(600):
                        try:
                            urllib.request.urlopen(f"http://127.0.0.1:{ports[written]}/health", timeout=1)
                            break
                        except OSError:
                            assert proc.poll() is None, proc.stderr.read()
                            time.sleep(0.2)
                elif args[:1] == ["curl"]:
                    for written, port in ports.items():
                        command = command.replace(f"127.0.0.1:{written}", f"127.0.0.1:{port}")
                    result = subprocess.run(["curl", "-f", "--max-time", "60", *shlex.split(command)[1:]],
                                            capture_output=True, text=True, timeout=120)
                    assert result.returncode == 0 and result.stdout, (command, result.stderr)
                    ran += 1
    finally:
        for proc in servers:
            proc.terminate()
            assert proc.wait(timeout=60) == 0
    assert ran >= 6, ran
