"""Where a check's CPU goes, or a first payment's, with no HTTP server in front: the app's ASGI
callable (the edge, the direct check, Litestar) driven in process, `--concurrency` requests at a
time, against the bench's data set (`make bench` seeds it first), under cProfile on CPU time.

    .venv/bin/python -m bench.profile_check [--requests 20000] [--top 30]
    .venv/bin/python -m bench.profile_check --webhooks [--requests 3000] [--concurrency 16]
    .venv/bin/python -m bench.profile_check --webhooks --passes 2   # per pass, unprofiled, uvloop
    .venv/bin/python -m bench.profile_check --decisions

Checks: prints the CPU per request of `/health` and of a check by serial measured the same way
(their difference is the check's own cost, which the cost model cannot split), then the functions
that hold the most of the check's CPU. `--webhooks`: signed `payment_intent.succeeded` events,
each the first payment of a contract made for the run (as the bench's webhook part posts them);
prints their CPU per event, then the same lists. `--decisions`: the pure decision alone, over 200
of the data set's products, no server.
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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from bench.run import BENCH_KEYS, DB_URL, OFFER_KEYS, WEBHOOK_SECRET, awaiting_payment

Request = tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]  # method, path, query, headers, body


async def _request(app: Any, request: Request) -> int:
    method, path, query, headers, body = request
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return status


async def _drive(app: Any, requests: list[Request], concurrency: int) -> float:
    """CPU seconds per request over `requests`, `concurrency` at a time."""
    queue = iter(requests)

    async def client() -> None:
        for request in queue:
            status = await _request(app, request)
            assert status == 200, (request[1], request[2], status)

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - started) / len(requests)


@asynccontextmanager
async def _served() -> AsyncIterator[Any]:
    """The app as `coverline serve` builds it for the bench's database, through its lifespan."""
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
    try:
        yield app
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await lifespan


def _profiled(profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


async def checks(count: int, top: int, contracts: int, concurrency: int) -> None:
    rng = random.Random(7)

    def some(n: int) -> list[Request]:
        return [
            (
                "GET",
                "/v1/entitlements",
                f"serial=BN{rng.randrange(contracts):08d}".encode(),
                [(b"authorization", f"Bearer {rng.choice(BENCH_KEYS)}".encode())],
                b"",
            )
            for _ in range(n)
        ]

    health: list[Request] = [("GET", "/health", b"", [], b"")] * count
    async with _served() as app:
        await _drive(app, some(2_000) + health[:2_000], concurrency)  # warm: pools, plan cache, key cache
        bare = await _drive(app, health, concurrency)
        unprofiled = await _drive(app, some(count), concurrency)
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        await _drive(app, some(count), concurrency)
        profile.disable()
    print(
        f"/health {bare * 1e3:.3f} ms CPU per request, check {unprofiled * 1e3:.3f} ms (in process, no HTTP)"
    )
    print(f"the check's own: {(unprofiled - bare) * 1e3:.3f} ms per request")
    print(_profiled(profile, top))


async def first_payments(count: int, top: int, contracts: int, concurrency: int, passes: int = 0) -> None:
    """With `passes`, that many passes unprofiled (each printed), and no profile: the figure to
    compare two trees by, alternately."""
    from billing.webhooks.signatures import sign

    now = int(time.time())
    awaiting = await awaiting_payment(max(3, passes + 1) * count, contracts, f"prof{now}")

    def events(contract_ids: list[str]) -> list[Request]:
        requests: list[Request] = []
        for contract_id in contract_ids:
            body = msgspec.json.encode(
                {
                    "id": f"evt_prof_{contract_id}",
                    "object": "event",
                    "type": "payment_intent.succeeded",
                    "created": now,
                    "data": {
                        "object": {
                            "id": f"pi_prof_{contract_id}",
                            "object": "payment_intent",
                            "amount": 7900,
                            "currency": "usd",
                            "metadata": {"contract_id": contract_id},
                        }
                    },
                }
            )
            headers = [
                (b"content-type", b"application/json"),
                (b"stripe-signature", sign(body, WEBHOOK_SECRET, now).encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            requests.append(("POST", "/v1/stripe/webhooks", b"", headers, body))
        return requests

    async with _served() as app:
        await _drive(app, events(awaiting[:count]), concurrency)  # warm
        if passes:
            for n in range(1, passes + 1):
                cpu = await _drive(app, events(awaiting[n * count : (n + 1) * count]), concurrency)
                print(f"pass {n}: a first payment {cpu * 1e3:.3f} ms CPU per event (in process, no HTTP)")
            return
        unprofiled = await _drive(app, events(awaiting[count : 2 * count]), concurrency)
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        await _drive(app, events(awaiting[2 * count :]), concurrency)
        profile.disable()
    print(f"a first payment {unprofiled * 1e3:.3f} ms CPU per event (in process, no HTTP)")
    print(_profiled(profile, top))


async def decisions(products: int, contracts: int, passes: int = 7) -> None:
    """The pure decision alone (`decide_product`, no incident, now) over products of the data set,
    their snapshots read once: the best of `passes` passes and their median, per product."""
    import datetime as dt

    import asyncpg

    from entitlements.decisions import decide_product, plans_for
    from entitlements.store.plans import plan_version
    from entitlements.store.snapshots import decode_snapshot
    from entitlements.store.statements import PgStatements

    db = await asyncpg.connect(DB_URL)
    try:
        serials = [f"BN{i * 7919 % contracts:08d}" for i in range(products)]  # every shape of the seed
        rows = await db.fetch("SELECT entitlement FROM products WHERE serial = ANY($1)", serials)
        snapshots = [decode_snapshot(row[0]) for row in rows]
        statements = PgStatements(db)
        plans = await plans_for(lambda code, version: plan_version(statements, code, version), snapshots)
    finally:
        await db.close()
    now = dt.datetime.now(dt.UTC)
    each: list[float] = []
    for _ in range(passes):
        began = time.process_time()
        for _ in range(10):
            for snapshot in snapshots:
                decide_product(snapshot, plans, now, None)
        each.append((time.process_time() - began) / (10 * len(snapshots)))
    each.sort()
    best, median = each[0] * 1e6, each[passes // 2] * 1e6
    per_product = sum(len(s.contracts) for s in snapshots) / len(snapshots)
    print(
        f"a product's decision {best:.1f} µs CPU (median of {passes} passes {median:.1f}),"
        f" {len(snapshots)} products, {per_product:.1f} contracts each"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--webhooks", action="store_true", help="first payments instead of checks")
    parser.add_argument("--decisions", action="store_true", help="the pure decision alone, per product")
    parser.add_argument("--requests", type=int, help="per measured pass (20,000 checks, 3,000 events)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--contracts", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, help="requests in flight at once (64 checks, 16 events)")
    parser.add_argument(
        "--passes", type=int, default=0, help="with --webhooks: this many passes, no profile, on uvloop"
    )
    args = parser.parse_args()
    if args.decisions:
        run = decisions(200, args.contracts)
    elif args.webhooks:
        run = first_payments(
            args.requests or 3_000, args.top, args.contracts, args.concurrency or 16, args.passes
        )
    else:
        run = checks(args.requests or 20_000, args.top, args.contracts, args.concurrency or 64)
    if args.passes:
        import uvloop  # the server's loop: what a pass is compared by

        uvloop.run(run)
    else:
        asyncio.run(run)
