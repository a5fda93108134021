"""Where a check's CPU goes, with no HTTP server in front: the app's ASGI callable (the edge, the
direct check, Litestar for /health) driven in process at 64 concurrent requests (`--concurrency`), against the
bench's data set (`make bench` seeds it first), under cProfile.

    .venv/bin/python -m bench.profile_check [--requests 20000] [--top 30]

Prints the CPU per request of `/health` and of a check by serial measured the same way (their
difference is the check's own cost, which the cost model cannot split), then the functions that
hold the most of the check's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import time
from typing import Any

from bench.run import BENCH_KEYS, DB_URL, OFFER_KEYS, WEBHOOK_SECRET


async def _request(app: Any, path: str, query: bytes, key: str) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return status


async def _drive(app: Any, requests: list[tuple[str, bytes, str]], concurrency: int) -> float:
    """CPU seconds per request over `requests`, `concurrency` at a time."""
    queue = iter(requests)

    async def client() -> None:
        for path, query, key in queue:
            status = await _request(app, path, query, key)
            assert status == 200, (path, query, status)

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - started) / len(requests)


async def main(count: int, top: int, contracts: int, concurrency: int) -> None:
    os.environ.update(
        {
            "COVERLINE_ENV": "production",
            "DATABASE_URL": DB_URL,
            "COVERLINE_OFFER_KEYS": OFFER_KEYS,
            "COVERLINE_LOG_LEVEL": "WARNING",
            "COVERLINE_DB_CONNECTIONS": "40",
            "STRIPE_API_KEY": "sk_test_bench_unused",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "COVERLINE_REPLAY_KEY": "bench-replay-key-" + "r" * 32,
        }
    )
    from api.app import create_app
    from api.settings import load_settings

    app = create_app(load_settings())
    to_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def send(message: Any) -> None:
        await from_app.put(message)

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, send))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    rng = random.Random(7)

    def checks(n: int) -> list[tuple[str, bytes, str]]:
        return [
            ("/v1/entitlements", f"serial=BN{rng.randrange(contracts):08d}".encode(), rng.choice(BENCH_KEYS))
            for _ in range(n)
        ]

    health = [("/health", b"", BENCH_KEYS[0])] * count
    await _drive(app, checks(2_000) + health[:2_000], concurrency)  # warm: pools, plan cache, key cache
    bare = await _drive(app, health, concurrency)
    unprofiled = await _drive(app, checks(count), concurrency)
    profile = cProfile.Profile()
    profile.enable()
    await _drive(app, checks(count), concurrency)
    profile.disable()
    print(
        f"/health {bare * 1e3:.3f} ms CPU per request, check {unprofiled * 1e3:.3f} ms (in process, no HTTP)"
    )
    print(f"the check's own: {(unprofiled - bare) * 1e3:.3f} ms per request")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())
    await to_app.put({"type": "lifespan.shutdown"})
    await from_app.get()
    await lifespan


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--contracts", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight at once")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.top, args.contracts, args.concurrency))
