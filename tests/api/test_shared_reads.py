"""Concurrent checks in one process share their snapshot reads on PostgreSQL (`SharedReads`):
one round trip for a burst, each check getting its own products, never a read sent before it
asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import CoverlineApp
from entitlements.store.snapshots import SharedReads, decode_snapshot
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class CountingPool:
    """The app's pool, counting the connections the reads take."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.checkouts = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        self.checkouts += 1
        async with self.pool.acquire() as connection:
            yield connection


@pytest.fixture
async def sold(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> list[dict[str, Any]]:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    return [await shop.sell() for _ in range(3)]


async def test_a_burst_of_checks_costs_one_read(app: CoverlineApp, sold: list[dict[str, Any]]) -> None:
    pool = CountingPool(app.state.db._read_pool)
    reads = SharedReads(pool)  # type: ignore[arg-type]
    serials = [c["serial"] for c in sold]
    asked = [*serials, "NEVER-SOLD", serials[0]]
    answers = await asyncio.gather(*(reads.fetch("serial", [serial]) for serial in asked))
    assert pool.checkouts == 1
    for serial, rows in zip(asked, answers, strict=True):
        found = [decode_snapshot(raw) for _, raw in rows]
        assert [s.serial for s in found] == ([] if serial == "NEVER-SOLD" else [serial])
    contract_rows = await reads.fetch("contract_id", [sold[1]["id"]])
    assert [decode_snapshot(raw).serial for _, raw in contract_rows] == [sold[1]["serial"]]
    assert pool.checkouts == 2


async def test_a_read_already_sent_is_never_joined(app: CoverlineApp, sold: list[dict[str, Any]]) -> None:
    pool = CountingPool(app.state.db._read_pool)
    reads = SharedReads(pool)  # type: ignore[arg-type]
    first = asyncio.create_task(reads.fetch("serial", [sold[0]["serial"]]))
    await asyncio.sleep(0)  # the read of the first is sent now
    await asyncio.sleep(0)
    second = await reads.fetch("serial", [sold[1]["serial"]])
    assert [key for key, _ in await first] == [sold[0]["serial"]]
    assert [key for key, _ in second] == [sold[1]["serial"]]
    assert pool.checkouts == 2


async def test_lookups_that_arrive_while_reads_are_out_gather_into_the_next(
    app: CoverlineApp, sold: list[dict[str, Any]]
) -> None:
    released = asyncio.Event()

    class SlowPool(CountingPool):
        @asynccontextmanager
        async def acquire(self) -> AsyncIterator[Any]:
            await released.wait()
            async with super().acquire() as connection:
                yield connection

    pool = SlowPool(app.state.db._read_pool)
    reads = SharedReads(pool)  # type: ignore[arg-type]
    serials = [c["serial"] for c in sold]
    out = []
    for serial in serials[:2]:  # two reads out: every slot taken
        out.append(asyncio.create_task(reads.fetch("serial", [serial])))
        for _ in range(3):
            await asyncio.sleep(0)
    waiting = []
    for serial in [*serials, "NEVER-SOLD"]:  # each on a later tick than the one before
        waiting.append(asyncio.create_task(reads.fetch("serial", [serial])))
        for _ in range(3):
            await asyncio.sleep(0)
    released.set()
    answers = await asyncio.gather(*out, *waiting)
    assert pool.checkouts == 3  # the two that were out, and one for everything that waited
    asked = [*serials[:2], *serials, "NEVER-SOLD"]
    assert [[key for key, _ in rows] for rows in answers] == [
        [] if serial == "NEVER-SOLD" else [serial] for serial in asked
    ]


async def test_a_caller_that_goes_away_does_not_cancel_the_others(
    app: CoverlineApp, sold: list[dict[str, Any]]
) -> None:
    reads = SharedReads(app.state.db._read_pool)
    leaving = asyncio.create_task(reads.fetch("serial", [sold[0]["serial"]]))
    staying = asyncio.create_task(reads.fetch("serial", [sold[1]["serial"]]))
    await asyncio.sleep(0)
    leaving.cancel()
    assert [key for key, _ in await staying] == [sold[1]["serial"]]
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_read_fails_every_check_that_shared_it(app: CoverlineApp) -> None:
    class BrokenPool:
        @asynccontextmanager
        async def acquire(self) -> AsyncIterator[Any]:
            raise ConnectionError("the database went away")
            yield

    reads = SharedReads(BrokenPool())  # type: ignore[arg-type]
    results = await asyncio.gather(
        reads.fetch("serial", ["A"]), reads.fetch("serial", ["B"]), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
