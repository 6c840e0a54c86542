from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seqcli.cli.common import guard


@guard
def sample(
    checkpoint: str = typer.Argument(..., help="A run directory or a checkpoint file."),
    inputs: Optional[List[str]] = typer.Option(None, "--input", "-i", help="An input (repeat for several): text, a label, or numbers 'a b; c d'."),
    input_file: Optional[str] = typer.Option(None, "--input-file", help="One input per line ('-' for stdin)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the outputs here instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace --output if it exists."),
    prime: Optional[str] = typer.Option(None, "--prime", "-p", help="Language models: text to start from."),
    length: Optional[int] = typer.Option(None, "--length", "-n", help="Language models: tokens to generate."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", "-s", help="Language models: how many samples."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-t", help="Higher is more random; 0 is greedy."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample only from the k most likely tokens."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample only from the most likely tokens holding this much probability."),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token (temperature 0)."),
    beam_size: Optional[int] = typer.Option(None, "--beam-size", "-b", help="seq2seq/generate: beam search with this many beams."),
    n_best: Optional[int] = typer.Option(None, "--n-best", help="How many outputs per input (beam search; classify: labels)."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="seq2seq/generate: the longest output."),
    length_penalty: Optional[float] = typer.Option(None, "--length-penalty", help="Beam search: GNMT length penalty alpha (0: none)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed: the same seed gives the same output."),
    attention_plot: Optional[str] = typer.Option(None, "--attention-plot", help="seq2seq with attention: draw each input's alignment into this PNG."),
    glimpse_plot: Optional[str] = typer.Option(None, "--glimpse-plot", help="glimpse: draw where each glimpse fell into this PNG."),
    canvas_plot: Optional[str] = typer.Option(None, "--canvas-plot", help="draw: save the canvas after every step as a PNG strip."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
):
    """Generate, label, tag, translate or forecast with a trained model.

    Needs only the checkpoint: no recipe, no data. Conditional tasks take --input or
    --input-file and print one output per input line. Options not given take the values of
    the recipe's `sample:` section.
    """
    from seqcli import build
    from seqcli.errors import ConfigError, SeqcliError
    from seqcli.recipe.schema import check_args, parameters

    given = {"prime": prime, "length": length, "temperature": 0.0 if greedy else temperature, "top_k": top_k,
             "top_p": top_p, "num_samples": num_samples, "seed": seed, "beam_size": beam_size, "n_best": n_best,
             "max_length": max_length, "length_penalty": length_penalty, "attention_plot": attention_plot,
             "glimpse_plot": glimpse_plot, "canvas_plot": canvas_plot}
    given = {k: v for k, v in given.items() if v is not None}
    texts = list(inputs or []) + (read_inputs(input_file) if input_file else [])
    if inputs is not None or input_file is not None:
        given["inputs"] = texts
    if output is not None and Path(output).exists() and not force:
        raise SeqcliError(f"--output: {output} already exists; pass --force to replace it")
    for key in PICTURES:
        if given.get(key) is not None:
            from seqcli import plots

            flag = f"--{key.replace('_', '-')}"
            plots.output_file(given[key], force, flag)
            plots.pyplot()
    loaded = build.from_checkpoint(checkpoint, which, device)
    task_name = loaded.recipe.data["task"]["name"]
    accepted = parameters(loaded.task.sample, skip=("self", "model", "fields"))
    for key in given:
        if key not in accepted:
            flag = "--input/--input-file" if key == "inputs" else f"--{key.replace('_', '-')}"
            takes = ", ".join("--input" if k == "inputs" else f"--{k.replace('_', '-')}" for k in accepted)
            raise SeqcliError(f"{flag}: the {task_name} task does not take this option (it takes: {takes})")
    options = dict(loaded.recipe.data.get("sample", {}))
    options.update(given)
    values, problems = check_args(loaded.task.sample, options, skip=("self", "model", "fields"))
    if problems:
        raise SeqcliError("\n".join(f"--{k.replace('_', '-')}: {m}" for k, m in problems))
    try:
        loaded.task.check_sample(**values)
    except ConfigError as exc:
        raise SeqcliError(f"--{exc.key.replace('_', '-')}: {exc.message}") from None
    results = loaded.task.sample(loaded.model, loaded.fields, **values)
    text = "\n".join(results) if "inputs" in accepted else "\n\n".join(results)
    if output is not None:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


PICTURES = ("attention_plot", "glimpse_plot", "canvas_plot")  # options that write a PNG: checked before the model loads


def read_inputs(path: str) -> list[str]:
    import sys

    from seqcli.data.datasets.text import read_text
    from seqcli.errors import DataError
    from seqcli.recipe.schema import File, Problem

    if path == "-":
        return [line for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        File().apply(path)
    except Problem as exc:
        raise DataError(f"--input-file: {exc.message}") from None
    return [line for line in read_text(path).splitlines() if line.strip()]
