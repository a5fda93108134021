"""Rate limits that hold: per key id (not per spelling of its header), per publishable key and
client address, shared by every worker through PostgreSQL, answered 429 with `Retry-After` and
`RateLimit-*`; a limiter whose store is down lets requests through."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api.app import create_app
from api.keys import Scope
from api.rate_limits import RateLimits
from tests.conftest import Keys, make_settings, serving
from tests.live import coverline_server, seed_database


class Store:
    """A shared bucket with the clock stopped: what the database's lease does, in memory."""

    def __init__(self) -> None:
        self.tokens: dict[str, float] = {}

    async def lease(self, bucket: str, capacity: float, _per_second: float, want: int) -> int:
        await asyncio.sleep(0)  # a round trip: other requests run meanwhile
        held = self.tokens.setdefault(bucket, capacity)
        granted = int(min(want, held))
        self.tokens[bucket] = held - granted
        return granted


@pytest.mark.parametrize(("limit", "workers"), [(20, 1), (20, 2), (20, 4), (600, 2), (5000, 3)])
async def test_workers_sharing_a_bucket_allow_the_limit_and_no_more_than_a_batch_each_beyond(
    limit: int, workers: int
) -> None:
    store = Store()
    limiters = [RateLimits(store.lease, batch=100) for _ in range(workers)]
    batch = max(1, min(100, limit // 20))
    verdicts = await asyncio.gather(
        *(limiters[i % workers].take("sk:key_1", limit) for i in range(3 * limit))
    )
    allowed = sum(v.allowed for v in verdicts)
    # Tokens a worker took on credit before its first lease, or holds leased and unused, are
    # the only slack: at most a batch and a half per worker.
    assert limit - 1.5 * batch * workers <= allowed <= limit + batch * workers
    refused = next(v for v in verdicts if not v.allowed)
    assert (refused.limit, refused.remaining) == (limit, 0) and refused.reset >= 1


async def test_a_store_that_cannot_be_reached_lets_requests_through() -> None:
    async def down(*_: object) -> int:
        raise OSError("connection refused")

    limiter = RateLimits(down, batch=10)
    verdicts = [await limiter.take("sk:key_1", 20) for _ in range(50)]
    assert all(v.allowed for v in verdicts)


async def test_a_publishable_key_is_limited_per_client_address(database_url: str, keys: Keys) -> None:
    app = create_app(make_settings(database_url, publishable_rate_limit_per_minute=2))
    body = {
        "product": {
            "category": "phone",
            "price": {"amount": 1000, "currency": "USD"},
            "country": "US",
            "purchase_date": "2026-01-01",
        }
    }
    async with serving(app) as first:
        second = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 4000)),
            base_url="http://coverline.test",
        )
        async with second:
            mine = [
                (await first.post("/v1/offers", json=body, headers=keys.auth("publishable")))
                for _ in range(3)
            ]
            theirs = await second.post("/v1/offers", json=body, headers=keys.auth("publishable"))
    assert [r.status_code for r in mine][:2] != [429, 429] and mine[2].status_code == 429
    assert theirs.status_code != 429  # another shopper, another bucket
    refused = mine[2]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "30" and refused.headers["ratelimit-limit"] == "2"
    assert refused.headers["ratelimit-remaining"] == "0"


def test_two_workers_share_one_limit_however_the_key_is_spelled(database_url: str) -> None:
    key = seed_database(database_url, "desk", [Scope.SUPPORT])
    spellings = ["Bearer {}", "bearer {}", "BEARER {}", "Bearer   {}", "bEaReR {}"]
    with coverline_server(
        {"DATABASE_URL": database_url, "COVERLINE_RATE_LIMIT_PER_MINUTE": "20"}, workers=2
    ) as base:
        statuses = []
        for i in range(40):  # a new connection each time, so both workers take some
            answer = httpx.get(
                f"{base}/v1/plans", headers={"Authorization": spellings[i % 5].format(key)}, timeout=10
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                last = answer
    assert 20 <= statuses.count(200) <= 22, statuses  # a worker's first token, at most, on credit
    assert statuses.count(429) == 40 - statuses.count(200)
    assert last.headers["ratelimit-limit"] == "20" and int(last.headers["retry-after"]) >= 1


async def test_buckets_idle_long_enough_to_be_full_again_are_forgotten(database_url: str) -> None:
    import datetime as dt

    from sqlalchemy import text

    app = create_app(make_settings(database_url))
    async with serving(app):
        db = app.state.db
        assert await db.lease_tokens("pk:key_a:203.0.113.1", 600, 10, 5) == 5
        assert await db.lease_tokens("pk:key_a:203.0.113.2", 600, 10, 5) == 5
        async with db.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE rate_buckets SET at = at - interval '1 hour' WHERE bucket LIKE '%.1'")
            )
        assert await db.forget_rate_buckets(dt.timedelta(minutes=10)) == 1
        # Asked for again, it starts full: what it would have held by now anyway.
        assert await db.lease_tokens("pk:key_a:203.0.113.1", 600, 10, 600) == 600
