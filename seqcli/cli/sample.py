from __future__ import annotations

from typing import Optional

import typer

from seqcli.cli.common import guard


@guard
def sample(
    checkpoint: str = typer.Argument(..., help="A run directory or a checkpoint file."),
    prime: Optional[str] = typer.Option(None, "--prime", "-p", help="Text to start from."),
    length: Optional[int] = typer.Option(None, "--length", "-n", help="Tokens to generate."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-t", help="Higher is more random; 0 is greedy."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample only from the k most likely tokens."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample only from the most likely tokens holding this much probability."),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token (temperature 0)."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", "-s", help="How many samples."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed: the same seed gives the same text."),
    which: str = typer.Option("best", "--checkpoint", help="In a run directory: the best or the last checkpoint."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N."),
):
    """Generate from a trained model. Needs only the checkpoint: no recipe, no data.

    Options not given take the values of the recipe's `sample:` section.
    """
    from seqcli import build
    from seqcli.errors import SeqcliError
    from seqcli.recipe.schema import check_args

    given = {"prime": prime, "length": length, "temperature": 0.0 if greedy else temperature, "top_k": top_k,
             "top_p": top_p, "num_samples": num_samples, "seed": seed}
    loaded = build.from_checkpoint(checkpoint, which, device)
    options = dict(loaded.recipe.data.get("sample", {}))
    options.update({k: v for k, v in given.items() if v is not None})
    values, problems = check_args(loaded.task.sample, options, skip=("self", "model", "fields"))
    if problems:
        raise SeqcliError("\n".join(f"--{k.replace('_', '-')}: {m}" for k, m in problems))
    typer.echo("\n\n".join(loaded.task.sample(loaded.model, loaded.fields, **values)))
