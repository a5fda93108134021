"""The unit of work: one connection, one transaction, for one use case.

A use case writes through it and names the products whose record it changed (`touch`). Just
before COMMIT, inside the same transaction, the unit locks each touched product's row
(`FOR NO KEY UPDATE`, in a fixed order) and rewrites its entitlement snapshot from the record. A
use case cannot forget a snapshot, and a check, which reads only snapshots, can never see a
change without its snapshot or a snapshot without its change.

Work that must follow the commit (a call to Stripe, a delivery, an email) is enqueued as a job on
the same connection, inside the transaction (`enqueue`): a rollback leaves no job, a commit
leaves one that a worker (`coverline worker`) will run.

A unit is opened on a connection of its own (`api.database.Database.unit_of_work`), or on a
SQLAlchemy session's connection for the use cases that still read and write ORM rows
(`unit_of_work(session)`, finished by `commit(session)`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache, partial
from typing import Any, TypeVar

from sqlalchemy import Insert, Update, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable, visitors
from sqlalchemy.sql.expression import SelectBase

from entitlements.catalog import Plan
from entitlements.decisions import coverage_data, decide_product, plans_for
from entitlements.store import outbox
from entitlements.store.base import utcnow
from entitlements.store.outbox import PendingEvent
from entitlements.store.plans import plan_version
from entitlements.store.snapshots import refresh_snapshot
from entitlements.store.statements import PgStatements, constraint_errors, pg_sql, tables_of

T = TypeVar("T")
HELD_ROWS = 50  # `run_many` holds at most this many rows; more go at once, on their own


class UnitOfWork(PgStatements):
    """`holds_writes`: a write whose answer nobody reads (`run`, `run_many`: an INSERT or an
    UPDATE with no RETURNING) waits, and goes with the unit's next statement, in one round trip
    (see `_carries`); what is still held goes just before COMMIT. A first payment's coverage
    period, status, history entry and ledger entry are one round trip, not four. Only for a unit
    on a connection of its own: a session's ORM statements would not see a held write."""

    def __init__(
        self, connection: Any, touched: set[str] | None = None, *, holds_writes: bool = False
    ) -> None:
        super().__init__(connection)
        self.touched: set[str] = set() if touched is None else touched
        self.outbox: list[PendingEvent] = []
        self.jobs: list[tuple[str, bytes]] = []
        self.holds_writes = holds_writes
        self._held: list[tuple[str, list[Any]]] = []  # (SQL, its arguments), in the order written
        self._appended: set[str] = set()  # tables the held writes only insert values into
        self._changed: set[str] = set()  # tables they change otherwise

    # --- held writes ---------------------------------------------------------------------------

    async def run(self, statement: Executable, /, **params: Any) -> None:
        if not await self._hold(statement, [params]):
            await super().run(statement, **params)

    async def run_many(self, statement: Executable, params: Sequence[Mapping[str, Any]], /) -> None:
        if not await self._hold(statement, params):
            await self.release()
            await super().run_many(statement, params)

    async def _hold(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Hold the write (a row each), unless it cannot wait: False, and nothing held."""
        if not (self.holds_writes and _holdable(statement) and 0 < len(rows) <= HELD_ROWS):
            return False
        compiled = [pg_sql(statement, params) for params in rows]
        if any(sql.startswith("WITH") for sql, _, _ in compiled):
            return False  # a WITH clause cannot hold one that writes
        # Every statement of one WITH clause sees the database as the statement began, and none
        # sees the keys another inserts (an ON CONFLICT clause would not skip them): a write that
        # reads or writes a table a held write changes goes after it, in a round trip of its own.
        # INSERTs of values into one table, with no ON CONFLICT clause, commute: they share one.
        appends = _plain_insert(statement) and all(" ON CONFLICT " not in sql for sql, _, _ in compiled)
        if len(rows) > 1 and not appends:
            return False  # its rows would not see each other
        table = statement.table.name  # type: ignore[attr-defined]
        touches = tables_of(statement) or frozenset()
        if touches & self._changed or (touches & self._appended and not appends):
            await self.release()
        for (sql, names, fixed), params in zip(compiled, rows, strict=True):
            self._held.append((sql, self._args(names, fixed, params)))
        (self._appended if appends else self._changed).add(table)
        return True

    def _carries(self, statement: Executable, sql: str) -> bool:
        """Whether the held writes can go with this statement, in a WITH clause before it: when it
        neither reads nor writes a table they change (it would see those tables as they were
        before them), has no WITH clause of its own, and is a plain read or an INSERT.

        An UPDATE or a locking read carries them only when they all append: PostgreSQL runs the
        writes of a WITH clause that the statement does not read after the statement, and an
        append locks only its new keys (and shares the rows its foreign keys name, which a unit
        writes only after locking them), so the statement's locks come first, then the keys,
        whichever writes were held. A writer that held other UPDATEs would take its locks in
        no fixed order with the statement's."""
        touches = tables_of(statement)
        if touches is None or touches & (self._appended | self._changed):
            return False
        if (sql.startswith("SELECT") and " FOR " not in sql) or sql.startswith("INSERT"):
            return True
        return not self._changed and (sql.startswith("UPDATE") or sql.startswith("SELECT"))

    async def _call(
        self, method: Callable[..., Awaitable[T]], statement: Executable, params: Mapping[str, Any]
    ) -> T:
        if self._held:
            sql, names, fixed = pg_sql(statement, params)
            if self._carries(statement, sql):
                return await self._with_held(method, sql, self._args(names, fixed, params))
            await self.release()
        return await super()._call(method, statement, params)

    async def _with_held(self, method: Callable[..., Awaitable[T]], sql: str, args: Sequence[Any]) -> T:
        """Run the statement with every held write in a WITH clause before it."""
        held = self._take()
        together = _together((*(h[0] for h in held), sql))
        with constraint_errors(together):
            return await method(together, *(a for _, held_args in held for a in held_args), *args)

    def _take(self) -> list[tuple[str, list[Any]]]:
        held, self._held = self._held, []
        self._appended.clear()
        self._changed.clear()
        return held

    async def release(self) -> None:
        """Send the held writes now, in one statement."""
        if self._held:
            held = self._take()
            together = _together(tuple(sql for sql, _ in held))
            with constraint_errors(together):
                await self.connection.execute(together, *(a for _, args in held for a in args))

    def emit(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        product_id: str | None = None,
        contract_id: str | None = None,
    ) -> None:
        """An event about this unit's change, written with it just before COMMIT (the outbox)."""
        self.outbox.append(PendingEvent(event_type, data, product_id, contract_id))

    def touch(self, *product_ids: str) -> None:
        """These products' records changed: their snapshots are rewritten before COMMIT."""
        self.touched.update(product_ids)

    def enqueue(self, job: str, payload: bytes) -> None:
        """A job that runs once this unit commits; none if it rolls back. The unit's jobs are
        written together just before COMMIT, in one statement (an event's deliveries to every
        endpoint, its letter, a refund: one round trip, not one each)."""
        self.jobs.append((job, payload))

    async def _write_jobs(self) -> None:
        # Imported on first use: PgQueuer and what it brings (pydantic) cost a server worker that
        # enqueues nothing 17 MB (`make bench`).
        from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
        from pgqueuer.adapters.persistence.queries import Queries

        jobs, self.jobs = self.jobs, []
        queries = Queries(AsyncpgDriver(_JobsCarryHeld(self)))  # type: ignore[arg-type]  # it only fetches
        # Every other job before an event's deliveries when both are due: a receiver that refuses
        # them all keeps thousands due, and letters and refunds waited behind them for minutes.
        priorities = [0 if job == outbox.DELIVER else 1 for job, _ in jobs]
        await queries.enqueue([job for job, _ in jobs], [payload for _, payload in jobs], priorities)

    async def _plan(self, code: str, version: int) -> Plan | None:
        return await plan_version(self, code, version)

    async def before_commit(self) -> None:
        """Lock and rewrite the snapshot of every touched product, in a fixed order, so two units
        never wait on each other's products; then write the events, `coverage.changed` with each
        touched product's check answer as of now among them, and enqueue their deliveries; then
        write every job the unit enqueued, in one statement."""
        now = utcnow()
        numbered: dict[str, int] = {}  # product → the last event number its snapshot's update took
        subscribed: outbox.Subscribed | None = None  # read along with a product's record
        for product_id in sorted(self.touched):
            # Its events: those of the use case, and the `coverage.changed` emitted below.
            events = 1 + sum(1 for e in self.outbox if e.product_id == product_id)
            refreshed = await refresh_snapshot(self, product_id, events)
            if refreshed is not None:
                plans = await plans_for(self._plan, [refreshed.snapshot])
                data = coverage_data(decide_product(refreshed.snapshot, plans, now, None))
                self.emit("coverage.changed", data, product_id=product_id)
                numbered[product_id] = refreshed.sequence
                subscribed = refreshed.subscribed
        self.touched.clear()
        pending, self.outbox = self.outbox, []
        await outbox.write(self, pending, now, numbered, subscribed)
        if self.jobs:
            await self._write_jobs()
        await self.release()


class _JobsCarryHeld:
    """The unit's connection as PgQueuer's driver uses it to enqueue: the jobs' INSERT carries
    the writes the unit still holds (it reads none of their tables), so that a unit whose last
    writes were held (an event's outcome, an audit entry) sends them and its jobs in one round
    trip."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        if self.unit._held:
            return await self.unit._with_held(self.unit.connection.fetch, query.strip(), args)
        return list(await self.unit.connection.fetch(query, *args))


_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=1024)
def _holdable(statement: Executable) -> bool:
    """An INSERT or UPDATE whose answer nobody reads: no RETURNING, and no SQL text in it."""
    return (
        isinstance(statement, Insert | Update)
        and not statement.exported_columns
        and tables_of(statement) is not None
    )


@lru_cache(maxsize=1024)
def _plain_insert(statement: Executable) -> bool:
    """An INSERT of values, reading no table (not even its own)."""
    return isinstance(statement, Insert) and not any(
        isinstance(e, SelectBase) for e in visitors.iterate(statement)
    )


def _renumber(offset: int, placeholder: re.Match[str]) -> str:
    return f"${int(placeholder[1]) + offset}"


@lru_cache(maxsize=512)
def _together(statements: tuple[str, ...]) -> str:
    """Several statements as one: each but the last in a WITH clause (PostgreSQL runs every
    data-modifying statement there to completion, whether the last reads it or not), their `$n`
    numbered on from the statements before. A last statement with a WITH clause of its own
    (PgQueuer's enqueue) has theirs joined to it."""
    if len(statements) == 1:
        return statements[0]
    numbered: list[str] = []
    offset = 0
    for sql in statements:
        numbered.append(_PLACEHOLDER.sub(partial(_renumber, offset), sql))
        offset += max((int(n) for n in _PLACEHOLDER.findall(sql)), default=0)
    *held, last = numbered
    clause = "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(held))
    if last.startswith("WITH ") and not last.startswith("WITH RECURSIVE"):
        return f"{clause}, {last.removeprefix('WITH ')}"  # its own WITH clause, joined to theirs
    return f"{clause} {last}"


# --- on a SQLAlchemy session's connection ----------------------------------------------------------

_UNIT = "coverline.unit_of_work"
_TOUCHED = "coverline.touched_products"


def touch(session: AsyncSession, *product_ids: str) -> None:
    """These products' records changed in the session's transaction (see `UnitOfWork.touch`)."""
    session.info.setdefault(_TOUCHED, set()).update(product_ids)


async def unit_of_work(session: AsyncSession) -> UnitOfWork:
    """The unit of work on the session's connection, inside its transaction. Pending ORM changes
    are flushed first, so that statements run past the session see them."""
    await session.flush()
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    found: UnitOfWork | None = session.info.get(_UNIT)
    if found is None or found.connection is not driver:  # the session's last transaction had another
        if not driver.is_in_transaction():  # type: ignore[union-attr]
            # SQLAlchemy's asyncpg adapter sends BEGIN with its first statement: send one, so that
            # what runs past the adapter is inside the session's transaction.
            await connection.exec_driver_sql("SELECT 1")
        found = session.info[_UNIT] = UnitOfWork(driver, session.info.setdefault(_TOUCHED, set()))
    return found


async def commit(session: AsyncSession) -> None:
    """Rewrite the touched products' snapshots and write the events, then commit: how a
    session's unit of work ends."""
    if session.info.get(_TOUCHED) or _pending_writes(session):
        await (await unit_of_work(session)).before_commit()
    await session.commit()


def _pending_writes(session: AsyncSession | Session) -> bool:
    """Events emitted or jobs enqueued in the session's unit, not written yet."""
    unit: UnitOfWork | None = session.info.get(_UNIT)
    return unit is not None and bool(unit.outbox or unit.jobs)


@event.listens_for(Session, "before_commit")
def _snapshots_were_rewritten(session: Session) -> None:
    if session.info.get(_TOUCHED) or _pending_writes(session):
        raise RuntimeError(
            "products were touched, events emitted or jobs enqueued, but not written: end with `commit`"
        )


@event.listens_for(Session, "after_commit")
def _forget_unit(session: Session) -> None:
    session.info.pop(_UNIT, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_touched(session: Session, _previous: Any) -> None:
    session.info.pop(_TOUCHED, None)
    session.info.pop(_UNIT, None)


# Units of work on demand: `Database.unit_of_work` is one; `session_units` makes them from a
# session factory, for a caller that has no `Database` (a CLI command).
Units = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


def session_units(sessions: async_sessionmaker[AsyncSession]) -> Units:
    @asynccontextmanager
    async def unit() -> AsyncIterator[UnitOfWork]:
        async with sessions() as session:
            yield await unit_of_work(session)
            await commit(session)

    return unit
