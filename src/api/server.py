"""The production server: uvicorn on uvloop and httptools, one event loop per worker process.

One thread per worker reads the sockets, parses HTTP and runs the app. Under granian, whose Rust
thread hands each request to the Python thread across the GIL, requests waited outside the app,
and the check's median p99 was 31 ms against 12 ms at the same throughput (README, "Measured").
"""

from __future__ import annotations

import os
from functools import cache
from http import HTTPStatus
from typing import Any

import msgspec
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import PROBLEM_JSON, make_problem

# A request's line and headers together. httptools sets no bound of its own (uvicorn bounds only
# h11's), so without one a client could grow a worker's memory with one endless header.
MAX_HEAD_BYTES = 64 * 1024
# How long a refused connection is still read from (and what arrives dropped) before it closes:
# closing with unread data would reset it, and the client could lose the answer.
LINGER_SECONDS = 2.0


@cache
def read_timeouts() -> tuple[float, float]:
    """How long a request's head, then its body, may take to arrive (seconds), from the
    environment as each worker process finds it (uvicorn starts them afresh)."""
    return (
        float(os.environ.get("COVERLINE_HEAD_TIMEOUT_SECONDS") or 10),
        float(os.environ.get("COVERLINE_BODY_TIMEOUT_SECONDS") or 60),
    )


class BoundedHead(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing the connection once a request's
    head passes `MAX_HEAD_BYTES` without ending, and 408 once a head or a body takes longer to
    arrive than `read_timeouts()` allow (uvicorn has neither timeout: a client sending a byte now
    and then would hold a connection, and what it sent, for ever).

    A read counts, whole, when it began inside a head and no head ended in it; a read in which
    one message ends and the next begins does not, so a head is cut at most one read late.
    """

    _in_head = True  # a connection begins with a request's head
    _head_bytes = 0
    _heads_ended = 0
    _refused = False
    _timer: Any = None  # the read deadline of the head or body arriving now

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._too_slow, what, seconds)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self, what: str, seconds: float) -> None:
        self._timer = None
        if self.transport.is_closing() or self._refused:
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # an answer is under way: all that is left is to stop
            return
        if self._in_head and not self._heads_ended and not self._head_bytes:
            self.transport.close()  # it never asked anything: nothing to answer (a preconnect)
            return
        detail = f"the request's {what} did not arrive within {seconds:g} seconds"
        self._write_closing(408, msgspec.json.encode(make_problem(408, detail, slug="request-timeout")))
        self._refused = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # The first head has as long from the moment the connection opens: one that never sends
        # a byte held its socket and memory for ever (8,000 of them: 20 MB, 8,000 descriptors).
        self._arm(read_timeouts()[0], "line and headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped, so that closing does not reset the connection under the answer
        inside, ended = self._in_head, self._heads_ended
        super().data_received(data)
        if inside and ended == self._heads_ended and not self.transport.is_closing():
            if self._timer is None:  # a head begun and not ended in one read: it has so long
                self._arm(read_timeouts()[0], "line and headers")
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                if self.cycle is not None and not self.cycle.response_complete:
                    self.flow.pause_reading()  # a pipelined response is still going out: after it
                else:
                    self._refuse()

    _parsed_bytes = 0  # the request line's URL and the headers of the head being parsed

    def on_url(self, url: bytes) -> None:
        self._parsed_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_bytes += len(name) + len(value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # A head that arrived whole in one read (one 80 kB header, say) was never counted by
        # reads: what the parser saw decides. It is answered by `_head_too_large`, not the app.
        oversized = self._parsed_bytes > MAX_HEAD_BYTES
        self._in_head, self._head_bytes, self._parsed_bytes = False, 0, 0
        self._heads_ended += 1
        self._disarm()
        if any(name in (b"content-length", b"transfer-encoding") for name, _ in self.headers):
            self._arm(read_timeouts()[1], "body")
        if not oversized:
            super().on_headers_complete()
            return
        app, self.app = self.app, _head_too_large
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        self._in_head = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_bytes > MAX_HEAD_BYTES and not self._refused:
            self._refuse()

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers to bytes that are not HTTP, as a problem like every other answer
        (uvicorn's own is text/plain)."""
        self._write_closing(400, msgspec.json.encode(make_problem(400, msg, slug="malformed-request")))
        self.transport.close()

    def _write_closing(self, status: int, problem: bytes) -> None:
        """A problem answer written straight to the socket, the connection to close after it."""
        self.transport.write(
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
            + b"content-type: "
            + PROBLEM_JSON.encode()
            + b"\r\n"
            b"content-length: " + str(len(problem)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + problem
        )

    def _refuse(self) -> None:
        self._write_closing(431, _head_problem())
        self._refused = True
        self.transport.write_eof()  # the answer, then the end of what this side sends
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def _head_problem() -> bytes:
    detail = f"the request line and headers are over {MAX_HEAD_BYTES} bytes"
    return msgspec.json.encode(make_problem(431, detail, slug="head-too-large"))


async def _head_too_large(scope: Any, receive: Any, send: Any) -> None:
    body = _head_problem()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(host: str, port: int, workers: int, log_level: str) -> None:
    uvicorn.run(
        "api.app:production_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=f"{__name__}:BoundedHead",
        lifespan="on",
        log_level=log_level,
        log_config=None,  # its lines go through the app's structlog renderer (`api.logs`)
        access_log=False,
        server_header=False,
    )
