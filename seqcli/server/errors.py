"""What goes wrong, as the server tells it: every one is one line."""

from __future__ import annotations


class Unservable(Exception):
    """The server cannot start (a model that does not load, a bound the machine cannot take)."""


class Invalid(Exception):
    """A request the model cannot take (an option out of its bounds, an input it cannot read):
    answered 422, naming the option in `field` where there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


class Refused(Exception):
    """A request answered with `status` and a one-line JSON error."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


class DecoderLost(Exception):
    """A worker process exited while it held a group: its requests may be tried again."""
