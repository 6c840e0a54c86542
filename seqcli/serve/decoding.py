"""The decoding of a seqcli model in a server: groups of checked requests and streams, through
the one inference path `seqcli sample` takes. A server's decoders (`seqcli.server.workers`)
each hold one, in a worker process of their own (`load`) or in the server's process."""

from __future__ import annotations

from seqcli.errors import ConfigError, SeqcliError
from seqcli.server.errors import Invalid
from seqcli.server.workers import one_by_one


def invalid(exc: SeqcliError) -> Invalid:
    """seqcli's error about a request, as the server answers it (naming the option)."""
    if isinstance(exc, ConfigError):
        return Invalid(f"{exc.key}: {exc.message}" if exc.key else exc.message, exc.key)
    return Invalid(str(exc))


def result(samples) -> dict:
    """A request's samples as plain data: what the answer carries, pictures as their numbers."""
    return {"outputs": samples.lines, "predictions": [p.to_data() for p in samples.typed()],
            "figures": {name: figure.data for name, figure in samples.figures.items()}}


class Decoding:
    def __init__(self, loaded):
        self.task, self.model, self.fields = loaded.task, loaded.model, loaded.fields

    def decode(self, requests: list[dict]) -> list:
        """One group's requests, decoded together; a request the model cannot take fails
        alone."""
        return one_by_one(self._together, requests, Invalid)

    def _together(self, requests: list[dict]) -> list[dict]:
        from seqcli import inference

        try:
            return [result(s) for s in inference.sample_together(self.task, self.model, self.fields, requests)]
        except SeqcliError as exc:
            raise invalid(exc) from None

    def stream(self, requests: list[dict]):
        """A language model's pieces of text as they are drawn (a task streams one request at
        a time: `Checkpointed.streams_together` is false)."""
        from seqcli import inference

        (values,) = requests
        try:
            for pieces in inference.stream(self.task, self.model, self.fields, values):
                yield [pieces]
        except SeqcliError as exc:
            raise invalid(exc) from None


def load(runs: list[str], which: str, device: str, threads: int) -> Decoding:
    """A worker process's decoding: the model loaded afresh, with `threads` compute threads."""
    from seqcli import inference
    from seqcli.train.threads import use_threads

    use_threads(threads)
    try:
        return Decoding(inference.load(runs, which, device))
    except SeqcliError as exc:
        from seqcli.server.errors import Unservable

        raise Unservable(str(exc)) from None
