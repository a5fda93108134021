"""`make bench ARGS="--parts events"`: outbound events, from the outbox to a receiver.

One endpoint; the receiver runs in the bench's process on the same 2 cores (an asyncio HTTP server
that verifies nothing and answers 200 at once), `coverline worker` in a process of its own.
1. Throughput: a backlog of deliveries written at once, drained by one worker: deliveries/s, and
   the CPU the worker and PostgreSQL spent per delivery.
2. Latency: events committed at a steady rate (200/s by default), each in a transaction of its own
   as the outbox writes them: commit to delivered, p50/p99.
3. An outage: the receiver answers 503 for a while (`--events-down-seconds`, 600 for the issue's
   10 minutes), then comes back: every event delivered, and the duplicates counted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from bench.costs import postgres_ticks, stop, ticks

from api.deliveries import Delivery
from entitlements.outreach import GETTING_STARTED
from entitlements.store.outbox import DELIVER, new_event_id

SECRET = "whsec_" + "ZXZlbnRzLWJlbmNoLXNlY3JldC1mb3ItY292ZXJsaW5l"


class Receiver:
    """A consumer's endpoint: when each event arrived, how many times, and whether it is up."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.requests = 0
        self.up = True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
                )
                lowered = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                self.requests += 1
                if self.up:
                    self.arrived.setdefault(lowered["webhook-id"], time.time())
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                else:
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _letters_sent(db: asyncpg.Connection) -> int:
    """Note the data set's getting-started letters as sent, as a running system would have sent
    each in an outreach sweep a few days after its sale: the data set's million sales, all of the
    past month, would otherwise be written to by the worker's first sweep while this part measures
    deliveries. Each is noted once, without an event, due at its sale (the sweep asks only whether
    a contract was written to); a later run notes only the sales it has not.

    On a data set whose `outreach` is still empty the planner reckons on a table of a row or two
    and scans it again for each of the million sales (as the statement's own rows fill it): no
    nested loop, whatever it reckons."""
    async with db.transaction():
        await db.execute("SET LOCAL enable_nestloop = off")
        status = await db.execute(
            "INSERT INTO outreach (kind, subject_id, due_at, event_id, created_at)"
            " SELECT $1::text, c.id, c.sold_at, NULL, now() FROM contracts c"
            " WHERE NOT EXISTS (SELECT 1 FROM outreach o WHERE o.kind = $1::text AND o.subject_id = c.id)",
            GETTING_STARTED,
        )
    return int(status.split()[-1])


async def _endpoint(db: asyncpg.Connection, url: str) -> str:
    await db.execute("DELETE FROM webhook_deliveries; DELETE FROM webhook_endpoints; DELETE FROM pgqueuer")
    endpoint_id = "we_bench"
    await db.execute(
        "INSERT INTO webhook_endpoints (id, url, secret, event_types, enabled, created_at, updated_at)"
        " VALUES ($1, $2, $3, '{}', true, now(), now())",
        endpoint_id,
        url,
        SECRET,
    )
    return endpoint_id


def _event(product: int) -> tuple[str, dict[str, Any]]:
    event_id = new_event_id()
    return event_id, {
        "contract_id": f"ctr_b{product:09d}",
        "product_id": f"prd_b{product:09d}",
        "status": "active",
        "previous_status": "pending_payment",
    }


async def _write(db: asyncpg.Connection, endpoint_id: str, count: int, first: int) -> list[str]:
    """`count` events and their deliveries, as the outbox writes them, in one transaction."""
    rows, jobs = [], []
    for i in range(count):
        event_id, data = _event(first + i)
        rows.append(
            (
                event_id,
                "contract.activated",
                None,
                data["contract_id"],
                None,
                msgspec.json.encode(data).decode(),
            )
        )
        jobs.append((DELIVER, msgspec.json.encode(Delivery(event_id, endpoint_id))))
    async with db.transaction():
        await db.executemany(
            "INSERT INTO events (id, type, product_id, contract_id, sequence, data, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, now())",
            rows,
        )
        await db.executemany(
            "INSERT INTO pgqueuer (priority, entrypoint, payload, status) VALUES (0, $1, $2, 'queued')", jobs
        )
    return [row[0] for row in rows]


def _worker(db_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "coverline"), "worker"],
        env={**os.environ, "DATABASE_URL": db_url, "COVERLINE_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _until(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def events_bench(
    db_url: str, *, backlog: int, rate: int, seconds: int, down_seconds: int
) -> dict[str, float]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks"
    db = await asyncpg.connect(db_url)
    endpoint_id = await _endpoint(db, url)
    results: dict[str, float] = {"letters_noted": await _letters_sent(db)}
    worker = _worker(
        db_url,
        {
            "COVERLINE_WEBHOOK_RETRY_SECONDS": "1",
            "COVERLINE_WEBHOOK_RETRY_MAX_SECONDS": "30",
            "COVERLINE_JOB_POLL_SECONDS": "1",
        },
    )
    try:
        await asyncio.sleep(3)  # the worker has started and listens
        # 1. Throughput: a backlog drained.
        ids: list[str] = []
        for start in range(0, backlog, 5_000):
            ids += await _write(db, endpoint_id, min(5_000, backlog - start), start)
        cpu_worker, cpu_pg, started = ticks(worker.pid), postgres_ticks(), time.monotonic()
        done = await _until(
            lambda: all(i in receiver.arrived for i in ids[-50:]) and len(receiver.arrived) >= backlog, 600
        )
        elapsed = time.monotonic() - started
        results["throughput"] = backlog / elapsed if done else float("nan")
        results["worker_ms_per_delivery"] = (ticks(worker.pid) - cpu_worker) * 1000 / backlog
        results["postgres_ms_per_delivery"] = (postgres_ticks() - cpu_pg) * 1000 / backlog
        # 2. Latency at a steady rate: each event committed in a transaction of its own.
        committed: dict[str, float] = {}
        interval, next_at = 1 / rate, time.monotonic()
        for n in range(rate * seconds):
            [event_id] = await _write(db, endpoint_id, 1, backlog + n)
            committed[event_id] = time.time()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await _until(lambda: all(i in receiver.arrived for i in committed), 120)
        latencies = [(receiver.arrived[i] - t) * 1000 for i, t in committed.items() if i in receiver.arrived]
        results["offered_per_s"] = rate
        results["latency_p50_ms"] = _percentile(latencies, 0.5)
        results["latency_p99_ms"] = _percentile(latencies, 0.99)
        results["latency_lost"] = len(committed) - len(latencies)
        # 3. An outage, then back.
        receiver.up = False
        before = receiver.requests
        outage: list[str] = []
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < down_seconds:
            [event_id] = await _write(db, endpoint_id, 1, backlog + rate * seconds + n)
            outage.append(event_id)
            n += 1
            await asyncio.sleep(max(0.05, down_seconds / 2000))
        receiver.up = True
        back = time.monotonic()
        delivered = await _until(lambda: all(i in receiver.arrived for i in outage), 600)
        results["outage_seconds"] = down_seconds
        results["outage_events"] = len(outage)
        results["outage_all_delivered"] = float(delivered)
        results["outage_catch_up_seconds"] = time.monotonic() - back
        results["outage_requests"] = receiver.requests - before
        duplicates = await db.fetchval(
            "SELECT count(*) - count(DISTINCT event_id) FROM webhook_deliveries WHERE status = 'delivered'"
        )
        results["duplicates"] = int(duplicates or 0)
    finally:
        stop(worker)
        server.close()
        await db.close()
    return results


def report(r: dict[str, float]) -> None:
    print(
        f"letters noted          {r['letters_noted']:,.0f} getting-started letters of the data set's sales,"
        " as sent before the worker began"
    )
    print(
        f"event deliveries       {r['throughput']:,.0f}/s drained from a backlog (target >= 800); "
        f"worker {r['worker_ms_per_delivery']:.2f} ms and PostgreSQL {r['postgres_ms_per_delivery']:.2f} ms "
        f"of CPU a delivery"
    )
    print(
        f"commit to delivered    p50 {r['latency_p50_ms']:.0f} ms, p99 {r['latency_p99_ms']:.0f} ms at "
        f"{r['offered_per_s']:.0f} events/s offered (target p99 <= 2,000 ms); "
        f"{r['latency_lost']:.0f} not arrived"
    )
    print(
        f"receiver down          {r['outage_seconds']:.0f} s, {r['outage_events']:.0f} events: "
        f"{'all delivered' if r['outage_all_delivered'] else 'NOT ALL DELIVERED'} "
        f"{r['outage_catch_up_seconds']:.0f} s after it came back, {r['outage_requests']:.0f} requests, "
        f"{r['duplicates']:.0f} duplicates"
    )
