"""Concurrent checks in one process share their snapshot reads on PostgreSQL (`SharedReads`):
one round trip for a burst, each check getting its own products, never a read sent before it
asked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import CoverlineApp
from entitlements.store.snapshots import SharedReads, decode_snapshot
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys


def lookups(kind: str, *values: str) -> list[tuple[str, str]]:
    return [(kind, value) for value in values]


class CountingPool:
    """The app's pool, remembering the connections the reads take and counting those given back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.taken: list[Any] = []
        self.returns = 0

    @property
    def checkouts(self) -> int:
        return len(self.taken)

    async def acquire(self) -> Any:
        self.taken.append(await self.pool.acquire())
        return self.taken[-1]

    async def release(self, connection: Any) -> None:
        self.returns += 1
        await self.pool.release(connection)


@pytest.fixture
async def sold(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> list[dict[str, Any]]:
    await publish_test_plans(app)
    shop = Shop(client, keys)
    return [await shop.sell() for _ in range(3)]


class HeldPool(CountingPool):
    """Hands out no connection until `released` is set: the reads that take one stay out."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.released = asyncio.Event()

    async def acquire(self) -> Any:
        await self.released.wait()
        return await super().acquire()


@pytest.fixture
async def shared(app: CoverlineApp) -> AsyncIterator[Callable[[Any], SharedReads]]:
    """Shared reads over a pool, their kept connections given back however the test ends (a
    connection still out would keep the app's pool from closing)."""
    made: list[SharedReads] = []

    def make(pool: Any) -> SharedReads:
        made.append(SharedReads(pool))
        return made[-1]

    yield make
    for reads in made:
        await reads.close()


async def test_a_burst_of_checks_costs_one_read(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    pool = CountingPool(app.state.db._read_pool)
    reads = shared(pool)
    serials = [c["serial"] for c in sold]
    asked = [*serials, "NEVER-SOLD", serials[0]]
    answers = await asyncio.gather(*(reads.fetch(lookups("serial", serial)) for serial in asked))
    assert reads.sent == 1
    for serial, rows in zip(asked, answers, strict=True):
        found = [decode_snapshot(raw) for _, _, raw in rows]
        assert [s.serial for s in found] == ([] if serial == "NEVER-SOLD" else [serial])
    twice = await reads.fetch(lookups("serial", serials[2], serials[2], "NEVER-SOLD"))
    assert [key for _, key, _ in twice] == [serials[2]]
    contract_rows = await reads.fetch(lookups("contract_id", sold[1]["id"]))
    assert [decode_snapshot(raw).serial for _, _, raw in contract_rows] == [sold[1]["serial"]]
    assert reads.sent == 3
    assert pool.checkouts == 1  # each read kept its connection for the next
    await reads.close()
    assert pool.returns == 1


async def test_lookups_of_every_kind_asked_together_cost_one_read(
    app: CoverlineApp,
    client: httpx.AsyncClient,
    keys: Keys,
    sold: list[dict[str, Any]],
    shared: Callable[[Any], SharedReads],
) -> None:
    """A help desk's serial, a CRM's customer and contract, a phone's IMEI and an order reference
    gathered into one statement, each answered with its own products, a customer's in the order
    they were registered."""
    shop = Shop(client, keys)
    customer = sold[0]["customer"]["id"]
    later = await shop.product(customer, imei="356938035643809", order_ref="ORD-77")
    reads = shared(app.state.db._read_pool)
    asked = [
        lookups("serial", sold[1]["serial"]),
        lookups("contract_id", sold[2]["id"]),
        lookups("customer_id", customer),
        lookups("imei", "356938035643809"),
        lookups("order_ref", "ORD-77", "ORD-NONE"),
        lookups("serial", sold[1]["serial"], "NEVER-SOLD"),
    ]
    answers = await asyncio.gather(*(reads.fetch(lookup) for lookup in asked))
    assert reads.sent == 1
    serials = [[(kind, key, decode_snapshot(raw).serial) for kind, key, raw in rows] for rows in answers]
    assert serials == [
        [("serial", sold[1]["serial"], sold[1]["serial"])],
        [("contract_id", sold[2]["id"], sold[2]["serial"])],
        [("customer_id", customer, sold[0]["serial"]), ("customer_id", customer, later["serial"])],
        [("imei", "356938035643809", later["serial"])],
        [("order_ref", "ORD-77", later["serial"])],
        [("serial", sold[1]["serial"], sold[1]["serial"])],
    ]


async def test_a_read_already_sent_is_never_joined(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    pool = CountingPool(app.state.db._read_pool)
    reads = shared(pool)
    first = asyncio.create_task(reads.fetch(lookups("serial", sold[0]["serial"])))
    await asyncio.sleep(0)  # the read of the first is sent now
    await asyncio.sleep(0)
    second = await reads.fetch(lookups("serial", sold[1]["serial"]))
    assert [key for _, key, _ in await first] == [sold[0]["serial"]]
    assert [key for _, key, _ in second] == [sold[1]["serial"]]
    assert reads.sent == 2


async def test_lookups_that_arrive_while_reads_are_out_gather_into_the_next(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    pool = HeldPool(app.state.db._read_pool)
    reads = shared(pool)
    serials = [c["serial"] for c in sold]
    out = []
    for serial in serials[: reads.IN_FLIGHT]:  # as many reads out as may be: every slot taken
        out.append(asyncio.create_task(reads.fetch(lookups("serial", serial))))
        for _ in range(3):
            await asyncio.sleep(0)
    waiting = []
    for serial in [*serials, "NEVER-SOLD"]:  # each on a later tick than the one before
        waiting.append(asyncio.create_task(reads.fetch(lookups("serial", serial))))
        for _ in range(3):
            await asyncio.sleep(0)
    pool.released.set()
    answers = await asyncio.gather(*out, *waiting)
    assert reads.sent == reads.IN_FLIGHT + 1  # those that were out, and one for all that waited
    assert pool.checkouts == reads.IN_FLIGHT  # one connection for each read out at once
    asked = [*serials[: reads.IN_FLIGHT], *serials, "NEVER-SOLD"]
    assert [[key for _, key, _ in rows] for rows in answers] == [
        [] if serial == "NEVER-SOLD" else [serial] for serial in asked
    ]


async def test_a_caller_that_goes_away_does_not_cancel_the_others(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    reads = shared(app.state.db._read_pool)
    leaving = asyncio.create_task(reads.fetch(lookups("serial", sold[0]["serial"])))
    staying = asyncio.create_task(reads.fetch(lookups("serial", sold[1]["serial"])))
    await asyncio.sleep(0)
    leaving.cancel()
    assert [key for _, key, _ in await staying] == [sold[1]["serial"]]
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_read_fails_every_check_that_shared_it(
    app: CoverlineApp, shared: Callable[[Any], SharedReads]
) -> None:
    class BrokenPool:
        async def acquire(self) -> Any:
            raise ConnectionError("the database went away")

    reads = shared(BrokenPool())
    results = await asyncio.gather(
        reads.fetch(lookups("serial", "A")), reads.fetch(lookups("serial", "B")), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


async def test_a_connection_the_database_closed_between_reads_is_not_used_again(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    pool = CountingPool(app.state.db._read_pool)
    reads = shared(pool)
    serial = sold[0]["serial"]
    assert [key for _, key, _ in await reads.fetch(lookups("serial", serial))] == [serial]
    pid = pool.taken[0].get_server_pid()
    async with app.state.db._write_pool.acquire() as other:
        assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
    for _ in range(200):  # until the client has seen the server close it
        await asyncio.sleep(0.01)
        with contextlib.suppress(asyncpg.InterfaceError):  # the pool took it back
            if not pool.taken[0].is_closed():
                continue
        break
    assert [key for _, key, _ in await reads.fetch(lookups("serial", serial))] == [serial]
    assert pool.checkouts == 2  # a fresh connection for the next read, not the dead one
    await reads.close()
    assert pool.returns == 2


async def test_closing_while_a_read_is_out_gives_its_connection_back_when_it_ends(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    pool = HeldPool(app.state.db._read_pool)
    reads = shared(pool)
    out = asyncio.create_task(reads.fetch(lookups("serial", sold[0]["serial"])))
    for _ in range(3):
        await asyncio.sleep(0)
    await reads.close()
    pool.released.set()
    assert [key for _, key, _ in await out] == [sold[0]["serial"]]
    assert (pool.checkouts, pool.returns) == (1, 1)


async def test_the_read_pool_plans_its_lookups_once(app: CoverlineApp, client: httpx.AsyncClient) -> None:
    """Its statements are key lookups over an array, which PostgreSQL would otherwise plan anew on
    every execution (`api.database.READ_SETTINGS`)."""
    async with app.state.db._read_pool.acquire() as connection:
        assert await connection.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    async with app.state.db._write_pool.acquire() as connection:
        assert await connection.fetchval("SHOW plan_cache_mode") == "auto"


async def test_a_read_stopped_before_it_began_leaves_no_read_open_behind(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    reads = shared(app.state.db._read_pool)
    serial = sold[0]["serial"]
    looking = asyncio.create_task(reads.fetch(lookups("serial", serial)))
    await asyncio.sleep(0)  # the lookup opened a read, whose task has not run yet
    for sending in list(reads._gathered._sending):
        sending.cancel()
    await asyncio.wait([looking], timeout=5)
    assert looking.cancelled()  # its lookup is told, not left waiting
    assert [key for _, key, _ in await asyncio.wait_for(reads.fetch(lookups("serial", serial)), 5)] == [
        serial
    ]


async def test_a_kept_connection_goes_back_to_the_pool_now_and_then(
    app: CoverlineApp, sold: list[dict[str, Any]], shared: Callable[[Any], SharedReads]
) -> None:
    pool = CountingPool(app.state.db._read_pool)
    reads = shared(pool)
    reads.KEEP_FOR = 2
    for _ in range(3):
        assert [key for _, key, _ in await reads.fetch(lookups("serial", sold[0]["serial"]))] == [
            sold[0]["serial"]
        ]
    assert (reads.sent, pool.checkouts, pool.returns) == (3, 2, 1)
