"""The production server: uvicorn on uvloop and httptools, one event loop per worker process.

One thread per worker reads the sockets, parses HTTP and runs the app. Under granian, whose Rust
thread hands each request to the Python thread across the GIL, requests waited outside the app,
and the check's median p99 was 31 ms against 12 ms at the same throughput (README, "Measured").
"""

from __future__ import annotations

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


class BoundedHead(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing the connection once a request's
    head passes `MAX_HEAD_BYTES` without ending.

    A read counts, whole, when it began inside a head and no head ended in it; a read in which
    one message ends and the next begins does not, so a head is cut at most one read late.
    """

    _in_head = True  # a connection begins with a request's head
    _head_bytes = 0
    _heads_ended = 0
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped, so that closing does not reset the connection under the answer
        inside, ended = self._in_head, self._heads_ended
        super().data_received(data)
        if inside and ended == self._heads_ended and not self.transport.is_closing():
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
        if not oversized:
            super().on_headers_complete()
            return
        app, self.app = self.app, _head_too_large
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
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
