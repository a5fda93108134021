"""A unit of work that holds its writes (`UnitOfWork(holds_writes=True)`, every unit a request or
an event opens) sends them with its next statement: fewer round trips, the same database.

Each test works on tables of its own, on a connection inside a transaction that is rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from entitlements.store.unit_of_work import UnitOfWork

meta = MetaData()
first = Table("held_first", meta, Column("id", Integer, primary_key=True), Column("v", Integer))
second = Table("held_second", meta, Column("id", Integer, primary_key=True), Column("v", Integer))
TABLES = {"first": first, "second": second}
_MAKE = [
    "CREATE TEMP TABLE held_first (id int PRIMARY KEY, v int) ON COMMIT DROP",
    "CREATE TEMP TABLE held_second (id int PRIMARY KEY, v int) ON COMMIT DROP",
]


def _bump(table: Table) -> Any:
    return update(table).where(table.c.id == bindparam("key")).values(v=table.c.v + bindparam("by"))


def _copy(into: Table, source: Table) -> Any:
    """An update that reads the other table: it must see that table's held writes."""
    total = select(source.c.v).where(source.c.id == bindparam("key")).scalar_subquery()
    return update(into).where(into.c.id == bindparam("key")).values(v=total)


def _insert_absent(table: Table) -> Any:
    taken = select(table.c.id).where(table.c.id == bindparam("key")).exists()
    return insert(table).from_select(["id", "v"], select(bindparam("key"), bindparam("v")).where(~taken))


def _read(table: Table) -> Any:
    return select(table.c.id, table.c.v).order_by(table.c.id)


def _lock(table: Table) -> Any:
    """A write whose answer is read (RETURNING): it is never held, and may carry held writes."""
    return update(table).where(table.c.id == bindparam("key")).values(v=table.c.v).returning(table.c.v)


class Counted:
    """The statements a connection sends (one per round trip here: none is pipelined)."""

    def __init__(self, connection: asyncpg.Connection[Any]) -> None:
        self._sent: list[str] = []
        connection.add_query_logger(lambda query: self._sent.append(query.query))

    async def sent(self) -> list[str]:
        await asyncio.sleep(0)  # asyncpg tells its loggers on the loop's next turn
        return self._sent


@asynccontextmanager
async def rolled_back(connection: asyncpg.Connection[Any]) -> AsyncIterator[None]:
    """A transaction (a savepoint when one is open) rolled back when the block ends, however it
    ends: a test leaves nothing of its writes, and a broken constraint aborts only this one."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection inside a transaction that is rolled back when the test ends: what a test
    writes, its transactions' included (savepoints inside this one), leaves nothing behind."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        async with rolled_back(connection):
            yield connection
    finally:
        await connection.close()


async def _unit(connection: asyncpg.Connection[Any], holds: bool) -> UnitOfWork:
    for sql in _MAKE:
        await connection.execute(sql)
    return UnitOfWork(connection, holds_writes=holds)


async def test_writes_nobody_reads_go_with_the_next_statement_on_other_tables(
    connection: asyncpg.Connection[Any],
) -> None:
    async with connection.transaction():
        unit = await _unit(connection, holds=True)
        counted = Counted(connection)
        await unit.run(insert(first), id=1, v=10)
        await unit.run_many(insert(first), [{"id": 2, "v": 20}, {"id": 3, "v": 30}])
        assert await counted.sent() == []
        await unit.run(_bump(first), key=1, by=5)  # reads what they insert: they go first
        assert len(await counted.sent()) == 1
        assert await unit.insert_new(second, id=1, v=1)  # reads nothing the update changes
        sent = await counted.sent()
        assert len(sent) == 2 and sent[1].startswith("WITH ")
        found = await connection.fetch("SELECT id, v FROM held_first ORDER BY id")
        assert [tuple(r) for r in found] == [(1, 15), (2, 20), (3, 30)]


async def test_a_read_of_a_table_a_held_write_changes_waits_for_it(
    connection: asyncpg.Connection[Any],
) -> None:
    async with connection.transaction():
        unit = await _unit(connection, holds=True)
        await unit.run(insert(first), id=1, v=10)
        await unit.run(_bump(first), key=1, by=5)  # the same table: the insert goes first
        counted = Counted(connection)
        assert [tuple(r) for r in await unit.rows(_read(first))] == [(1, 15)]
        assert len(await counted.sent()) == 2  # the held update, then the read that needs it
        assert not (await counted.sent())[1].startswith("WITH ")


async def test_a_held_write_that_breaks_a_constraint_fails_the_unit_before_commit(
    connection: asyncpg.Connection[Any],
) -> None:
    async with rolled_back(connection):
        unit = await _unit(connection, holds=True)
        await unit.run(insert(first), id=1, v=10)
        await unit.run(insert(first), id=1, v=11)
        with pytest.raises(IntegrityError):
            await unit.before_commit()


async def test_an_update_carries_held_appends_and_nothing_else(connection: asyncpg.Connection[Any]) -> None:
    async with connection.transaction():
        unit = await _unit(connection, holds=True)
        await connection.execute("INSERT INTO held_first VALUES (1, 10)")
        counted = Counted(connection)
        await unit.run(insert(second), id=1, v=1)  # an append: held
        assert await unit.row(_lock(first), key=1) == (10,)  # it goes with the update
        assert len(sent := await counted.sent()) == 1 and sent[0].startswith("WITH ")
        await unit.run(_bump(second), key=1, by=1)  # held, and it does more than append
        assert await unit.row(_lock(first), key=1) == (10,)  # so it goes first, on its own
        sent = await counted.sent()
        assert len(sent) == 3 and sent[1].startswith("UPDATE held_second") and not sent[2].startswith("WITH ")
        await unit.run(insert(first), id=2, v=2)  # an append to the table the update writes
        await unit.row(_lock(first), key=2)
        assert len(sent := await counted.sent()) == 5 and sent[3].startswith("INSERT")
        found = await connection.fetch("SELECT id, v FROM held_second")
        assert [tuple(r) for r in found] == [(1, 2)]


async def test_a_held_append_whose_key_is_taken_fails_the_statement_that_carries_it(
    connection: asyncpg.Connection[Any],
) -> None:
    async with rolled_back(connection):
        unit = await _unit(connection, holds=True)
        await connection.execute(
            "INSERT INTO held_first VALUES (1, 10); INSERT INTO held_second VALUES (1, 1)"
        )
        await unit.run(insert(second), id=1, v=2)  # a twin's row: its key is taken
        with pytest.raises(IntegrityError) as raised:
            await unit.row(_lock(first), key=1)
        assert getattr(raised.value.orig, "constraint_name", None) == "held_second_pkey"


async def test_the_units_jobs_carry_the_writes_it_still_holds(connection: asyncpg.Connection[Any]) -> None:
    async with connection.transaction():
        unit = await _unit(connection, holds=True)
        unit.enqueue("held.test", b"first")
        await unit.before_commit()  # asyncpg learns the queue's types on first use: not counted
        await unit.run(insert(first), id=1, v=10)
        unit.enqueue("held.test", b"payload")
        counted = Counted(connection)
        await unit.before_commit()
        sent = await counted.sent()
        assert len(sent) == 1 and "held_first" in sent[0] and "pgqueuer" in sent[0]
        assert await connection.fetchval("SELECT v FROM held_first WHERE id = 1") == 10
        queued = await connection.fetch(
            "SELECT payload FROM pgqueuer WHERE entrypoint = 'held.test' ORDER BY id"
        )
        assert [row[0] for row in queued] == [b"first", b"payload"]


async def test_a_unit_on_a_sessions_connection_holds_nothing(connection: asyncpg.Connection[Any]) -> None:
    async with connection.transaction():
        unit = await _unit(connection, holds=False)
        await unit.run(insert(first), id=1, v=10)
        assert await connection.fetchval("SELECT v FROM held_first WHERE id = 1") == 10


STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["insert", "insert_values", "append", "bump", "copy", "read", "lock", "insert_new", "many"]
        ),
        st.sampled_from(["first", "second"]),
        st.integers(1, 4),
    ),
    min_size=1,
    max_size=12,
)


async def _play(connection: asyncpg.Connection[Any], holds: bool, steps: list[Any]) -> tuple[list[Any], int]:
    """What each read answered, then both tables as they end, and the statements it took."""
    answers: list[Any] = []
    appended = iter(range(100, 200))  # keys no other step takes
    async with rolled_back(connection):
        unit = await _unit(connection, holds)
        counted = Counted(connection)
        for action, name, key in steps:
            table = TABLES[name]
            other = second if table is first else first
            if action == "insert":  # unless the key is taken, which it reads
                await unit.run(_insert_absent(table), key=key, v=key * 10)
            elif action == "insert_values":
                await unit.run(postgresql.insert(table).on_conflict_do_nothing(), id=key, v=key)
            elif action == "append":
                await unit.run(insert(table), id=next(appended), v=key)
            elif action == "lock":
                answers.append(await unit.row(_lock(table), key=key))
            elif action == "bump":
                await unit.run(_bump(table), key=key, by=key)
            elif action == "copy":
                await unit.run(_copy(table, other), key=key)
            elif action == "read":
                answers.append([tuple(r) for r in await unit.rows(_read(table))])
            elif action == "insert_new":
                answers.append(await unit.insert_new(table, id=key + 10, v=key))
            else:
                await unit.run_many(_bump(table), [{"key": key, "by": 1}, {"key": key + 1, "by": 2}])
        await unit.before_commit()
        sent = len(await counted.sent())
        for table in (first, second):
            answers.append(
                [tuple(r) for r in await connection.fetch(f"SELECT id, v FROM {table.name} ORDER BY id")]
            )
    return answers, sent


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(steps=STEPS)
async def test_holding_writes_changes_no_answer_and_no_row_only_the_round_trips(
    connection: asyncpg.Connection[Any], steps: list[Any]
) -> None:
    held, held_sent = await _play(connection, True, steps)
    at_once, at_once_sent = await _play(connection, False, steps)
    assert held == at_once
    assert held_sent <= at_once_sent
