"""int8 exports (`seqcli export --quantize int8`) against the float export and `seqcli sample`,
on the models of real size (benchmarks/realsize.py; trained once and cached) and on the
bundled `reverse` recipe's size.

For each model: the folder's size on disk; whole commands on the same inputs (`python run.py
--input-file` float and int8, `seqcli sample --input-file`), start-up included, same threads
and batch size, best of --repeats; and what int8 cost on the test split, as the model card
measures it through run.py (exact match for the seq2seq, perplexity of the first 2,000 test
tokens for the language model). The language model is timed as batch-1 sampling of
--length tokens, float runner against int8 runner.

    python benchmarks/int8.py [--threads 2] [--batch-size 64] [--repeats 2] [--no-real-size]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record import record  # noqa: E402


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started


def card_values(folder: Path) -> dict:
    return {k: float(v) for k, v in re.findall(r"\| ([a-z0-9 ]+) \| ([0-9.]+) \|",
                                               (folder / "README.md").read_text().split("## Quantised")[1])}


def row(what: str, value: float, base: float, unit: str, goal: str) -> None:
    print(f"  {what:<58} {value:>10,.1f} {base:>10,.1f} {unit:<10} {value / base:>6.2f}x  (goal {goal})", flush=True)
    record("int8", what, value, base, unit, goal)


def writer(run: Path, inputs: list[str], root: Path, args, label: str) -> None:
    import seqcli
    from seqcli import export

    folders = {"float": export.export(run, root / f"{label}-float", test=False),
               "int8": export.export(run, root / f"{label}-int8", quantize="int8")}
    file = root / f"{label}.txt"
    file.write_text("\n".join(inputs) + "\n")
    main = str(Path(seqcli.__file__).parent / "__main__.py")
    params = sum(p.numel() for p in seqcli.load(run).model.parameters())
    print(f"{label}: seq2seq of {params:,} parameters, {len(inputs):,} inputs, threads {args.threads}, "
          f"batch {args.batch_size}")
    row(f"{label}: folder size, float vs int8 (smaller is the goal)", size(folders["float"]) / 2**20,
        size(folders["int8"]) / 2**20, "MiB", "int8 >= 3x smaller")
    for name, beam in (("greedy", 1), ("beam 5", 5)):
        common = ["--input-file", str(file), "--beam-size", str(beam), "--threads", str(args.threads),
                  "--batch-size", str(args.batch_size)]
        took = {kind: min(timed([str(folder / "run.py"), *common, "-o", str(root / f"{kind}.out"), "--force"])
                          for _ in range(args.repeats)) for kind, folder in folders.items()}
        took["seqcli"] = min(timed([main, "sample", str(run), *common, "-o", str(root / "seqcli.out"), "--force"])
                             for _ in range(args.repeats))
        rate = {k: len(inputs) / v for k, v in took.items()}
        same = sum(a == b for a, b in zip((root / "float.out").read_text().splitlines(),
                                          (root / "int8.out").read_text().splitlines()))
        row(f"{label} {name}: int8 runner vs float runner", rate["int8"], rate["float"], "inputs/s", ">= 1.5")
        row(f"{label} {name}: int8 runner vs seqcli sample", rate["int8"], rate["seqcli"], "inputs/s", ">= 1")
        print(f"    outputs the same as the float runner's: {same:,} of {len(inputs):,}", flush=True)
    measured = card_values(folders["int8"])
    print(f"    on the test split (the card): {measured}", flush=True)


def language_model(run: Path, root: Path, args) -> None:
    from seqcli import export

    folders = {"float": export.export(run, root / "lm-float", test=False),
               "int8": export.export(run, root / "lm-int8", quantize="int8")}
    models = {}
    for kind, folder in folders.items():
        spec = importlib.util.spec_from_file_location(f"lm_{kind}", folder / "run.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        models[kind] = module.Model(folder, args.threads)
    rate = {}
    for kind, model in models.items():
        best = min(_time(lambda m=model: m.generate(prime="", length=args.length, temperature=0.0))
                   for _ in range(args.repeats))
        rate[kind] = args.length / best
    print(f"language model (10,000 words), batch-1 sampling of {args.length} tokens, threads {args.threads}")
    row("10,000-word LM: folder size, float vs int8", size(folders["float"]) / 2**20, size(folders["int8"]) / 2**20,
        "MiB", "int8 >= 3x smaller")
    row("10,000-word LM: int8 runner vs float runner, sampling", rate["int8"], rate["float"], "tokens/s", ">= 1.5")
    print(f"    on the test split (the card): {card_values(folders['int8'])}", flush=True)


def _time(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--no-real-size", action="store_true")
    args = parser.parse_args()
    from typer.testing import CliRunner

    from seqcli.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundled = root / "reverse"
        done = CliRunner().invoke(app, ["run", "reverse", "--run-dir", str(bundled)])
        assert done.exit_code == 0, done.output
        import random

        rng = random.Random(0)
        writer(bundled, ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 12))) for _ in range(6300)],
               root, args, "reverse (bundled size)")
        if not args.no_real_size:
            import realsize

            run = realsize.path("seq2seq")
            writer(run, realsize.test_inputs(run), root, args, "real-size seq2seq")
            language_model(realsize.path("lm"), root, args)


if __name__ == "__main__":
    main()
