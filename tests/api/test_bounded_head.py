"""The production server's bound on a request's head (`api.server.BoundedHead`), driven byte by
byte through a recording transport, with an app that answers when the test lets it."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
import uvicorn
from uvicorn.server import ServerState

from api.server import MAX_HEAD_BYTES, BoundedHead


class Transport(asyncio.Transport):
    """What a socket would carry, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = b""
        self.ended = self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += bytes(data)

    def write_eof(self) -> None:
        self.ended = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class App:
    """Answers 200 to each request once `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def _connection(app: App) -> tuple[BoundedHead, Transport]:
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    config.load()
    protocol = BoundedHead(config, ServerState(), {}, asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _problem(sent: bytes) -> dict[str, Any]:
    head, _, body = sent.rpartition(b"\r\n\r\n")
    assert head.split(b"\r\n")[-4].startswith(b"HTTP/1.1 431 "), sent[-400:]
    return dict(msgspec.json.decode(body))


FILLER = b"a" * 4096


async def test_a_head_that_does_not_end_is_refused_one_read_past_the_bound() -> None:
    app = App()
    protocol, transport = await _connection(app)
    protocol.data_received(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ")
    fed = 0
    while not transport.ended and fed < 2 * MAX_HEAD_BYTES:
        protocol.data_received(FILLER)
        fed += len(FILLER)
    assert transport.ended
    assert fed == pytest.approx(MAX_HEAD_BYTES, abs=len(FILLER) + 64)
    problem = _problem(transport.sent)
    assert (problem["status"], problem["type"]) == (431, "urn:coverline:problem:head-too-large")
    protocol.data_received(FILLER * 100)  # read and dropped while the answer goes out
    assert transport.sent.count(b"HTTP/1.1") == 1 and not transport.closed
    await asyncio.sleep(0)
    assert protocol.cycle is None  # no request ever reached the app


async def test_heads_under_the_bound_and_bodies_over_it_are_served() -> None:
    app = App()
    app.release.set()
    protocol, transport = await _connection(app)
    body = b"b" * (3 * MAX_HEAD_BYTES)
    post = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    near = b"GET /y HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * (MAX_HEAD_BYTES - 200) + b"\r\n\r\n"
    stream = post + body + near + near
    read = MAX_HEAD_BYTES * 3 // 2  # reads that end one message and begin the next
    for start in range(0, len(stream), read):
        protocol.data_received(stream[start : start + read])
        for _ in range(5):
            await asyncio.sleep(0)
    assert transport.sent.count(b"HTTP/1.1 200 ") == 3, transport.sent[-300:]
    assert b" 431 " not in transport.sent


async def test_a_head_over_the_bound_behind_a_response_in_progress_waits_for_it() -> None:
    app = App()
    protocol, transport = await _connection(app)
    protocol.data_received(
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nX-Filler: "
    )
    await asyncio.sleep(0)
    for _ in range(2 * MAX_HEAD_BYTES // len(FILLER)):
        if not transport.reading:
            break
        protocol.data_received(FILLER)
    assert transport.sent == b""  # paused at the bound: nothing interleaves with the first answer
    app.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    first, _, rest = transport.sent.partition(b"ok")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert _problem(rest)["status"] == 431 and transport.ended


@pytest.mark.parametrize("size", [MAX_HEAD_BYTES + 2_000, 100_000])
async def test_one_header_over_the_bound_arriving_in_one_read_is_refused(size: int) -> None:
    app = App()
    app.release.set()
    protocol, transport = await _connection(app)
    protocol.data_received(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
    for _ in range(5):
        await asyncio.sleep(0)
    head, _, body = transport.sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), transport.sent[:300]
    assert b"connection: close" in head.lower()
    assert msgspec.json.decode(body)["type"] == "urn:coverline:problem:head-too-large"
    assert b"ok" not in transport.sent  # the app never answered


async def test_bytes_that_are_not_http_get_a_problem_not_plain_text() -> None:
    protocol, transport = await _connection(App())
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\x00: y\r\n\r\n")
    head, _, body = transport.sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in head, transport.sent
    assert msgspec.json.decode(body)["status"] == 400
    assert transport.closed
