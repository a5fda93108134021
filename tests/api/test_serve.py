"""`coverline serve`: two worker processes on PostgreSQL, and the bound on a request's head over a
real socket (the bound itself, read by read: `test_bounded_head.py`)."""

import socket
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from api.keys import Scope
from api.server import MAX_HEAD_BYTES
from tests.live import coverline_server, seed_database


def test_two_workers_answer_checks_and_stop_cleanly(database_url: str) -> None:
    """Checks are answered through the shared reads (which keep their connections between
    reads), and SIGTERM stops the server, each worker closing its pools, within 10 s."""
    key = seed_database(database_url, "desk", [Scope.SUPPORT])
    with coverline_server({"DATABASE_URL": database_url}, workers=2) as base:
        for i in range(40):  # a new connection each time, so both workers take some
            answer = httpx.get(
                f"{base}/v1/entitlements",
                params={"serial": f"NOT-SOLD-{i}"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert (answer.json()["covered"], answer.json()["reason"]) == (False, "no_contract")


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[tuple[str, int]]:
    with coverline_server({"DATABASE_URL": database_url}) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def _exchange(address: tuple[str, int], *chunks: bytes) -> bytes:
    """Sends the chunks one write each, then reads until the server closes or goes quiet."""
    with socket.create_connection(address, timeout=5) as conn:
        for chunk in chunks:
            conn.sendall(chunk)
        received = b""
        try:
            while data := conn.recv(65536):
                received += data
        except TimeoutError:
            pass
        return received


def test_a_head_over_the_bound_is_refused_with_a_problem_and_the_connection_closed(
    server: tuple[str, int],
) -> None:
    # Twice the bound, 8 kB a write: the server answers at the first read past the bound, then
    # reads and drops the rest, so the answer is not lost to a reset.
    endless = [b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: "] + [b"a" * 8192] * (
        2 * MAX_HEAD_BYTES // 8192
    )
    answer = _exchange(server, *endless, b"\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), head
    assert b"content-type: application/problem+json" in head
    problem = msgspec.json.decode(body)
    assert (problem["status"], problem["type"]) == (431, "urn:coverline:problem:head-too-large")
    assert answer.count(b"HTTP/1.1 ") == 1  # closed: the request was not served after all
