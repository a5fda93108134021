"""`coverline serve` bounds how long a request may take to arrive: a head trickling in, or a body
that stops short of its length, gets 408 and the connection closes within the timeout; a large
body is not even waited for without a good key; a request that arrives in time is untouched."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.live import coverline_server

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def address(database_url: str) -> Iterator[tuple[str, int]]:
    env = {
        "DATABASE_URL": database_url,
        "COVERLINE_HEAD_TIMEOUT_SECONDS": str(TIMEOUT),
        "COVERLINE_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    with coverline_server(env) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def _held(address: tuple[str, int], sent: bytes) -> tuple[bytes, float]:
    """What the server answers to `sent` (and nothing more), and how long until it closed."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=TIMEOUT * 5) as conn:
        conn.sendall(sent)
        received = b""
        while data := conn.recv(65536):
            received += data
    return received, time.monotonic() - started


def test_a_head_that_never_ends_gets_408_within_the_timeout(address: tuple[str, int]) -> None:
    answer, took = _held(address, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"application/problem+json" in answer and b"request-timeout" in answer
    assert took < TIMEOUT + 3  # the answer, then the linger: the connection does not stay


def test_a_body_short_of_its_length_gets_408_within_the_timeout(address: tuple[str, int]) -> None:
    head = b"POST /v1/offers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    answer, took = _held(address, head + b"{" * 1000)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert took < TIMEOUT + 3


def _answer(conn: socket.socket) -> bytes:
    """One whole answer off a kept-alive connection: its head, then its body's length."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += conn.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head


def test_a_request_that_arrives_in_time_is_answered_as_usual(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(TIMEOUT / 2)
        conn.sendall(b"\r\n")
        answer = _answer(conn)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        time.sleep(TIMEOUT * 1.5)  # idle between requests: the keep-alive's to judge, not these timeouts
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(conn).startswith(b"HTTP/1.1 200 ")


def test_a_large_body_without_a_good_key_is_refused_before_it_is_read(address: tuple[str, int]) -> None:
    head = (
        b"POST /v1/offers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n"
    )
    for authorization in (b"", b"Authorization: Bearer sk_test_" + b"x" * 43 + b"\r\n"):
        started = time.monotonic()
        answer, _ = _held(address, head + authorization + b"Connection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # not 408: nothing was waited for
        assert time.monotonic() - started < TIMEOUT


def test_a_connection_that_sends_nothing_is_closed_within_the_timeout(address: tuple[str, int]) -> None:
    """The head's time ran from its first byte: a connection that never sent one was held for
    ever (8,000 of them held 20 MB and as many descriptors)."""
    answer, took = _held(address, b"")
    assert answer == b""  # nothing was asked: nothing is answered
    assert TIMEOUT * 0.9 < took < TIMEOUT + 3
