"""Two instances on one database: every answer fresh after a write through the other.

Two `coverline serve` processes (each its own port and workers, as two API hosts would be) and two
`coverline worker` processes share the bench database. Each round transfers a contract (and its
product) to another customer through one instance and, as soon as that answer arrives, checks the
product's serial through the other: the answer must name the new owner. The rounds alternate
which instance writes. A stale answer is counted, never retried.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
from bench.costs import stop


async def _empty_queue(url: str) -> None:
    """The webhook part leaves a refund job per duplicate payment it posted, which would call a
    Stripe the bench does not have: the job workers here start from an empty queue."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DELETE FROM pgqueuer")
    finally:
        await connection.close()


def two_instances(
    start_server: Callable[[int], tuple[subprocess.Popen[bytes], str]],
    database_url: str,
    key: str,
    sample: dict[str, list[str]],
    rounds: int = 300,
) -> dict[str, float]:
    asyncio.run(_empty_queue(database_url))
    worker_env = {**os.environ, "DATABASE_URL": database_url, "COVERLINE_LOG_LEVEL": "WARNING"}
    coverline = str(Path(sys.executable).parent / "coverline")
    workers = [subprocess.Popen([coverline, "worker"], env=worker_env) for _ in range(2)]
    servers = [start_server(1) for _ in range(2)]
    headers = {"authorization": f"Bearer {key}"}
    rng = random.Random(5)
    stale = 0
    lags: list[float] = []
    owners = dict(zip(sample["serials"], sample["customers"], strict=True))
    by_serial = dict(zip(sample["serials"], sample["contracts"], strict=True))
    try:
        clients = [httpx.Client(base_url=base, headers=headers, timeout=30) for _, base in servers]
        for i in range(rounds):
            writer, reader = clients[i % 2], clients[(i + 1) % 2]
            serial = rng.choice(sample["serials"])
            new_owner = rng.choice(sample["customers"])
            if new_owner == owners[serial]:
                continue
            moved = writer.post(
                f"/v1/contracts/{by_serial[serial]}/transfer",
                json={"customer_id": new_owner},
                headers={"idempotency-key": secrets.token_hex(12)},
            )
            if moved.status_code != 200:
                continue  # a contract of the sample that cannot move (cancelled): not a freshness case
            written = time.perf_counter()
            answer = reader.get("/v1/entitlements", params={"serial": serial}).json()
            lags.append((time.perf_counter() - written) * 1000)
            owners[serial] = new_owner
            if not answer["products"] or answer["products"][0]["customer_id"] != new_owner:
                stale += 1
        for client in clients:
            client.close()
    finally:
        stop(*(server for server, _ in servers), *workers)
    lags.sort()
    return {
        "rounds": float(len(lags)),
        "stale": float(stale),
        "read_after_write_p50_ms": lags[len(lags) // 2] if lags else float("nan"),
        "read_after_write_p99_ms": lags[int(len(lags) * 0.99)] if lags else float("nan"),
    }
