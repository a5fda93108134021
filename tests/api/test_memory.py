"""What a stranger sends cannot bloat a worker: 1,000 distinct 60 kB bearer tokens (60 MB, were
any of them kept) and 200 slow or partial bodies leave `coverline serve` less than 30 MB larger,
each refused with a 4xx, and the slow connections closed within the read timeout."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx

from tests.live import coverline_process, modules_loaded_by

TIMEOUT = 1.5  # the server's head and body read timeouts, for this test


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _tokens(base: str, count: int) -> set[int]:
    statuses: set[int] = set()
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(16)

        async def one() -> None:
            token = "sk_test_" + secrets.token_urlsafe(45_000)  # 60 kB, each one different
            async with gate:
                answer = await client.get(
                    "/v1/entitlements", params={"serial": "X1"}, headers={"Authorization": f"Bearer {token}"}
                )
            statuses.add(answer.status_code)

        await asyncio.gather(*(one() for _ in range(count)))
    return statuses


async def _slow(host: str, port: int, keyless: bool) -> tuple[bytes, float]:
    """A body declared at 100 kB (a Stripe event: no key), or 1 MB (a claim, without a key),
    of which 20 kB come, and then nothing: what the server answers, and when it closed."""
    reader, writer = await asyncio.open_connection(host, port)
    path, length = ("/v1/stripe/webhooks", 100_000) if keyless else ("/v1/claims", 1_000_000)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: t=1,v1=00\r\nContent-Length: {length}\r\n\r\n"
    )
    started = time.monotonic()
    writer.write(head.encode() + b"{" + b" " * 20_000)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), TIMEOUT * 10)
    while await asyncio.wait_for(reader.read(65536), TIMEOUT * 10):
        pass  # until the server closes
    writer.close()
    return answer, time.monotonic() - started


def test_strangers_tokens_and_slow_bodies_leave_a_worker_its_size(database_url: str) -> None:
    env = {
        "DATABASE_URL": database_url,
        "COVERLINE_HEAD_TIMEOUT_SECONDS": str(TIMEOUT),
        "COVERLINE_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    with coverline_process(env) as (base, process):
        asyncio.run(_tokens(base, 200))  # warm: imports, pools, the first buffers
        before = rss_mb(process.pid)
        assert asyncio.run(_tokens(base, 1_000)) == {401}
        host, port = base.removeprefix("http://").split(":")

        async def slow_bodies() -> list[tuple[bytes, float]]:
            return await asyncio.gather(*(_slow(host, int(port), keyless=i % 2 == 0) for i in range(200)))

        held = asyncio.run(slow_bodies())
        grown = rss_mb(process.pid) - before
    assert grown < 30, f"the worker grew by {grown:.0f} MB"
    for answer, seconds in held:
        status = int(answer.split(b" ", 2)[1])
        assert status in (401, 408), answer[:200]  # no key: refused before the body; else timed out
        assert seconds < TIMEOUT + 3


def test_a_server_worker_loads_neither_the_job_queue_nor_the_delivery_client() -> None:
    """What only `coverline worker` runs stays out of a server worker: PgQueuer is imported when
    a unit first enqueues, aiohttp only by the delivery job (about 17 MB and 7 MB saved)."""
    modules = modules_loaded_by("api.app", "api.server")
    assert "api.routes.events" in modules  # the endpoints' routes are there
    assert not {"pgqueuer", "aiohttp"} & modules
