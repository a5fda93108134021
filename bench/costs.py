"""The bench's cost model: what one request costs, measured three ways.

- **CPU** in the server's workers and in PostgreSQL, per request: /proc's user + system time of
  the server's processes and of every `postgres` process, read before and after each throughput
  run (`Cpu`), divided by the requests that run served.
- **Round trips and transactions** to PostgreSQL, per request: `WireCounter` is a TCP proxy in
  front of PostgreSQL that counts how often a client speaks after the server has answered (what
  it pipelines meanwhile is the same round trip), and the transaction blocks that end (the
  server's ReadyForQuery turning idle after BEGIN; a statement run alone is not counted).
- **The limits of the database paths measured alone**, with asyncpg and no app: the batch's
  statement (`= ANY` over 100 serials), and the commit of one fsynced row.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def ticks(pid: int) -> float:
    """CPU seconds (user + system) of a process and of its children that have exited."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def stop(*processes: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Ask each process to stop (SIGTERM), and kill one still running after `seconds`: a job
    worker can be waiting on a call it made, or on a long job."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            found.append((int(entry.name), parent, name))
    return found


def tree_ticks(root: int) -> float:
    """CPU seconds of a process and all its descendants (the server and its workers)."""
    children: dict[int, list[int]] = {}
    for pid, parent, _ in _processes():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += ticks(pid)
        except OSError:
            continue
        todo += children.get(pid, [])
    return total


def postgres_ticks() -> float:
    """CPU seconds of every PostgreSQL process (the postmaster's count holds its ended backends)."""
    total = 0.0
    for pid, _, name in _processes():
        if name == "postgres":
            try:
                total += ticks(pid)
            except OSError:
                continue
    return total


class Cpu:
    """CPU spent by the server's processes and by PostgreSQL between `start` and `stop`."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.worker = self.postgres = 0.0

    def start(self) -> None:
        self._worker0, self._postgres0 = tree_ticks(self.server_pid), postgres_ticks()

    def stop(self) -> None:
        self.worker = tree_ticks(self.server_pid) - self._worker0
        self.postgres = postgres_ticks() - self._postgres0


class WireCounter:
    """A proxy in front of PostgreSQL (on a port of its own, in a thread of its own) that counts
    the round trips its clients make: a client's bytes that follow an answer from the server
    (or open the conversation) start one; messages the client pipelines before the answer
    belong to the same. It answers an SSL or GSS encryption request with "no" on the server's
    behalf, so that what passes through it stays readable."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.round_trips = 0
        self.commits = 0  # transaction blocks that ended (COMMIT or ROLLBACK)
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        loop.run_until_complete(asyncio.start_server(self._serve, sock=listener))
        self._ready.set()
        loop.run_forever()

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(*self.target)
        except OSError:
            client_out.close()
            return
        answered = [True]  # the server spoke last: the client's next bytes start a round trip
        back = asyncio.ensure_future(self._answers(server_in, client_out, answered))
        try:
            while True:  # the startup packets: a length, then a code, and no type byte
                head = await client_in.readexactly(8)
                length, code = struct.unpack("!ii", head)
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    server_out.write(head + await client_in.readexactly(length - 8))
                    break
                client_out.write(b"N")
                await client_out.drain()
            while data := await client_in.read(65536):
                if answered[0]:
                    self.round_trips += 1
                    answered[0] = False
                server_out.write(data)
                await server_out.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            server_out.close()
            back.cancel()
            client_out.close()

    async def _answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answered: list[bool]
    ) -> None:
        """The server's messages, passed on whole; a ReadyForQuery (`Z`) that turns idle after
        one inside a transaction block ends a transaction."""
        in_block = False
        pending = b""
        try:
            while data := await reader.read(65536):
                answered[0] = True
                pending += data
                while len(pending) >= 5:
                    length = struct.unpack("!i", pending[1:5])[0]
                    if len(pending) < length + 1:
                        break
                    if pending[:1] == b"Z":
                        state = pending[5:6]
                        self.commits += state == b"I" and in_block
                        in_block = state in (b"T", b"E")
                    pending = pending[length + 1 :]
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def _rate(
    url: str, work: Callable[[asyncpg.Connection], Awaitable[int]], seconds: float, connections: int
) -> float:
    """What `work` gets done per second (it says how much per call), called in a loop on each of
    `connections` connections for `seconds`."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    done = 0

    async def loop() -> None:
        nonlocal done
        deadline = time.monotonic() + seconds
        async with pool.acquire() as connection:
            while time.monotonic() < deadline:
                done += await work(connection)

    try:
        start = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(connections)))
        return done / (time.monotonic() - start)
    finally:
        await pool.close()


async def database_only_batch(
    url: str, serials: list[str], seconds: float = 5, connections: int = 8
) -> float:
    """Lookups per second of the batch's statement alone: 100 serials per `= ANY`, no app."""
    statement = (
        "SELECT serial, entitlement FROM products WHERE serial = ANY($1::text[]) ORDER BY created_at, id"
    )
    rng = random.Random(3)

    async def batch(connection: asyncpg.Connection) -> int:
        await connection.fetch(statement, rng.sample(serials, 100))
        return 100

    return await _rate(url, batch, seconds, connections)


async def fsynced_commits(url: str, seconds: float = 5, connections: int = 8) -> float:
    """Commits per second of one logged row each (each one waits for its WAL flush), no app."""
    setup = await asyncpg.connect(url)
    try:
        await setup.execute(
            "CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, at timestamptz)"
        )

        async def commit(connection: asyncpg.Connection) -> int:
            await connection.execute("INSERT INTO bench_commits (at) VALUES (now())")
            return 1

        return await _rate(url, commit, seconds, connections)
    finally:
        await setup.execute("TRUNCATE bench_commits")
        await setup.close()
