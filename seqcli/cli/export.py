from __future__ import annotations

from typing import Optional

import typer

from seqcli.cli.common import THREADS, console, guard


@guard
def export(
    run: str = typer.Argument(..., help="A run directory or a checkpoint file."),
    output: str = typer.Option(..., "--output", "-o", help="The folder to write (must not exist, or be empty)."),
    fmt: str = typer.Option("onnx", "--format", help="onnx (runs with onnxruntime, no torch) or pt2 (torch.export)."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best, last, or a checkpoint file."),
    test: bool = typer.Option(True, "--test/--no-test", help="Evaluate on the run's test split for the model card."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: the matrix products' weights in int8 (smaller, faster on CPU); the card says what it cost on the test split."),
    threads: Optional[int] = THREADS,
):
    """Export a trained model to a folder that runs without seqcli.

    The folder holds the graphs (ONNX by default), config.json, the vocabularies as JSON,
    the weights as safetensors, a model card (README.md) and run.py, a reference runner
    that needs only numpy and onnxruntime. With --quantize int8 the graphs' matrix products
    are int8 (no safetensors then), and the card says what that cost on the test split.
    Needs: pip install 'seqcli[export]'.
    """
    from seqcli import export as exporting
    from seqcli.train.threads import use_threads

    exporting.require(fmt)
    use_threads(threads)
    shown = console()
    out = exporting.export(run, output, fmt, checkpoint, test, shown, quantize)
    shown.print(f"wrote {out} (try: python {out / 'run.py'} --help)", highlight=False)
