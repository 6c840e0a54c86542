"""The server's connections: uvicorn's httptools protocol with the bounds a listening port
needs against slow or hostile clients.

- a request's head (its line and headers) is at most `max_header` bytes (431) and must
  arrive within `header_timeout` seconds of the connection or of the request's first byte
  (408); the whole request, body included, within `request_timeout` seconds;
- at most `max_connections` connections: one more closes the connection that has waited
  longest without sending a whole request head, or is answered 503 when every connection
  is busy with a request, so that slow clients cannot starve `/health`;
- an idle keep-alive connection is closed after uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import json
import resource
import time

from .errors import Unservable

RESERVED_FDS = 64  # files the server itself keeps open besides its connections


def check_connections(limit: int) -> None:
    """Raise the process's open-file limit so `limit` connections fit, or say in one line why
    they cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = limit + RESERVED_FDS
    if soft >= need:
        return
    ceiling = hard if hard != resource.RLIM_INFINITY else need
    if ceiling < need:
        raise Unservable(f"--max-connections {limit}: this process may open {ceiling} files (ulimit -Hn); "
                          f"at most {max(1, ceiling - RESERVED_FDS)} connections fit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode() + body


def protocol(settings):
    """uvicorn's httptools protocol class with `settings`' bounds."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Bounded(HttpToolsProtocol):
        head: int | None = 0  # bytes of the request head read so far; None while a request runs
        since = 0.0  # when this connection began waiting for a request head
        timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self.since = time.monotonic()
            if len(self.connections) > settings.max_connections and not self._evict():
                self._answer(503, "Service Unavailable", "the server has too many connections; try again shortly")
                return
            self._arm(settings.header_timeout, self._head_late)

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return
            if self.head is not None:
                self.head += len(data)
            super().data_received(data)
            if self.head is not None and self.head > settings.max_header:  # still no whole head
                self._too_large()

        def send_400_response(self, msg: str) -> None:
            if not self.transport.is_closing():
                self.transport.write(_response(400, "Bad Request", f"malformed HTTP request: {msg}"))
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self.head is None:  # a pipelined request: its head counts from here
                self.head, self.since = 0, time.monotonic()
            if self.timer is None:
                self._arm(settings.header_timeout, self._head_late)

        def on_headers_complete(self) -> None:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > settings.max_header:
                self._too_large()
                raise _Closed
            self.head = None
            self._arm(settings.request_timeout, self._body_late)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.head is None and not self.pipeline:
                self.head, self.since = 0, time.monotonic()  # the keep-alive wait: uvicorn's timer

        # -- bounds ---------------------------------------------------------------------------

        def _arm(self, seconds: float, then) -> None:
            self._disarm()
            self.timer = self.loop.call_later(seconds, then)

        def _disarm(self) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def _head_late(self) -> None:
            self.timer = None
            self._answer(408, "Request Timeout",
                         f"the request's head did not arrive within {settings.header_timeout:g} s")

        def _body_late(self) -> None:
            self.timer = None
            if self.cycle is not None and not self.cycle.response_started:  # the application sees the client gone
                self._answer(408, "Request Timeout",
                             f"the request did not arrive whole within {settings.request_timeout:g} s")
            elif not self.transport.is_closing():
                self.transport.close()

        def _too_large(self) -> None:
            self._answer(431, "Request Header Fields Too Large",
                         f"the request's line and headers are over {settings.max_header:,} bytes")

        def _answer(self, status: int, reason: str, message: str) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.write(_response(status, reason, message))
                self.transport.close()

        def _evict(self) -> bool:
            """Close the connection that has waited longest for a request head (not this one)."""
            waiting = [c for c in self.connections
                       if c is not self and getattr(c, "head", None) is not None and not c.transport.is_closing()]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda c: c.since)
            oldest._answer(503, "Service Unavailable", "the server needed this idle connection for another client")
            return True

    return Bounded


class _Closed(Exception):
    """Raised in a parser callback to stop parsing a connection already answered and closed."""
