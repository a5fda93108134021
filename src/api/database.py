"""The app's database handle and the per-request unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from litestar import Request
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.dependencies import Injected, Services
from api.embedded import database_url
from api.settings import MIN_CONNECTIONS
from entitlements.catalog import Plan
from entitlements.store.base import create_engine, reader_factory, session_factory
from entitlements.store.plans import known_plan_version, plan_version
from entitlements.store.snapshots import SharedReads, SnapshotSource
from entitlements.store.statements import PgStatements
from entitlements.store.unit_of_work import UnitOfWork, commit


async def _keep_session(connection: asyncpg.Connection) -> None:
    """asyncpg's pools here set no session state (reads, and transactions that end with their
    blocks; asyncpg rolls back one left open): nothing to reset between uses, which would cost a
    round trip each time."""


# The read pool's statements are key lookups, most of them `= ANY($1)` over an array. For those,
# PostgreSQL's default plan choice keeps planning every execution afresh (a custom plan knows the
# array's length, so the generic plan always looks costlier), which doubled the database's CPU
# per check; the generic plan is the same index scan (`make bench`).
READ_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


class ConnectionBudget(msgspec.Struct, frozen=True):
    """The PostgreSQL connections one process may open (`COVERLINE_DB_CONNECTIONS`), split
    across its pools: the checks' and key lookups' reads, the units of work of its own pool (the
    webhook path), and SQLAlchemy's (the session's use cases and reports)."""

    total: int

    def __post_init__(self) -> None:
        if self.total < MIN_CONNECTIONS:
            raise ValueError(f"a process needs at least {MIN_CONNECTIONS} connections, not {self.total}")

    @property
    def reads(self) -> int:
        return self.total * 2 // 5

    @property
    def units(self) -> int:
        return self.total * 3 // 10

    @property
    def sessions(self) -> int:
        return self.total - self.reads - self.units


_AVAILABLE = (
    "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int"
    " - coalesce(current_setting('reserved_connections', true)::int, 0)"  # PostgreSQL 16 on
)


async def available_connections(connection: asyncpg.Connection | PoolConnectionProxy) -> int:
    """What the server lets clients without superuser rights open, in all."""
    return int(await connection.fetchval(_AVAILABLE))


async def require_connections(
    connection: asyncpg.Connection | PoolConnectionProxy, per_process: int, processes: int = 1
) -> None:
    """Stop a start whose processes, each opening up to `per_process` connections, could open
    more than the server lets clients open, naming the setting to lower."""
    available = await available_connections(connection)
    needed = per_process * processes
    if needed > available:
        each = f" for each of {processes} server workers ({needed} in all)" if processes > 1 else ""
        raise RuntimeError(
            f"COVERLINE_DB_CONNECTIONS is {per_process}{each}, but the database lets clients open"
            f" {available} connections in all: lower it, or raise the server's max_connections"
        )


async def check_server(url: str, per_process: int, processes: int) -> bool:
    """Before `serve` starts its workers: do they fit in the server's connections together (a
    RuntimeError says why not)? False when the database was never migrated."""
    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await require_connections(connection, per_process, processes)
        return await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL") is True
    finally:
        await connection.close()


class Database:
    def __init__(
        self, url: str | None, *, var_dir: Path = Path("var"), budget: ConnectionBudget | None = None
    ) -> None:
        self.url = url  # None: the embedded server under `var_dir`, started by `start`
        self.var_dir = var_dir
        self.budget = budget or ConnectionBudget(30)
        self.driver_url = ""  # the server's URL as asyncpg takes it, once started
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._readers: async_sessionmaker[AsyncSession] | None = None
        self._read_pool: asyncpg.Pool | None = None  # checks and key lookups
        self._write_pool: asyncpg.Pool | None = None  # units of work (`unit_of_work`)
        self._shared_reads: SharedReads | None = None

    async def start(self) -> None:
        self.url = database_url(self.url, self.var_dir)
        budget = self.budget
        half = budget.sessions // 2
        self._engine = create_engine(self.url, pool_size=budget.sessions - half, overflow=half)
        self._sessions = session_factory(self._engine)
        self._readers = reader_factory(self._engine)
        url = self.driver_url = self._engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        try:
            self._read_pool = await asyncpg.create_pool(
                url, min_size=1, max_size=budget.reads, reset=_keep_session, server_settings=READ_SETTINGS
            )
            self._write_pool = await asyncpg.create_pool(
                url, min_size=1, max_size=budget.units, reset=_keep_session
            )
            async with self._read_pool.acquire() as connection:
                await require_connections(connection, budget.total)
        except BaseException:
            await self.dispose()  # what did open, closed: a failed start leaves nothing behind
            raise
        self._shared_reads = SharedReads(self._read_pool)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database is not connected yet")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("the database is not connected yet")
        return self._sessions

    @property
    def readers(self) -> async_sessionmaker[AsyncSession]:
        if self._readers is None:
            raise RuntimeError("the database is not connected yet")
        return self._readers

    def _pools(self) -> tuple[asyncpg.Pool, asyncpg.Pool, SharedReads]:
        if self._read_pool is None or self._write_pool is None or self._shared_reads is None:
            raise RuntimeError("the database is not connected yet")
        return self._read_pool, self._write_pool, self._shared_reads

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work, committed when the block ends (the touched products' snapshots
        rewritten first), rolled back if it raises. asyncpg runs its statements on a connection
        of a pool of its own, past SQLAlchemy's session and pool: a webhook event cost 2.7-3.0 ms
        of CPU in process through a session, 1.9-2.2 ms this way. (Not the pool the checks read
        from: a webhook that waits on Stripe or on a contract's lock must not hold up key lookups
        and checks.)"""
        async with self._pools()[1].acquire() as connection, connection.transaction():
            unit = UnitOfWork(connection, holds_writes=True)
            yield unit
            await unit.before_commit()

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[PgStatements]:
        """Statements each committed on its own (no transaction around them), on a connection of
        the units of work's pool: one round trip for a lone read or write, where a unit of work
        costs three (BEGIN, the statement, COMMIT)."""
        async with self._pools()[1].acquire() as connection:
            yield PgStatements(connection)

    def snapshots(self) -> SnapshotSource:
        """Where entitlement checks read: asyncpg directly, in reads that concurrent checks share
        (nothing to open or close per check)."""
        return self._pools()[2]

    async def active_key(self, secret_hash: str) -> tuple[str, str, str, str | None] | None:
        """(id, kind, scopes, servicer) of the unrevoked API key with this hash: asked on every
        request."""
        async with self._pools()[0].acquire() as connection:
            row = await connection.fetchrow(
                "SELECT id, kind, scopes, servicer_id FROM api_keys"
                " WHERE secret_hash = $1 AND revoked_at IS NULL",
                secret_hash,
            )
        return None if row is None else (row[0], row[1], row[2], row[3])

    async def lease_tokens(self, bucket: str, capacity: float, per_second: float, want: int) -> int:
        """Up to `want` tokens taken from a shared rate-limit bucket (`rate_buckets`), refilled
        at `per_second` up to `capacity` since it was last touched; how many were granted. One
        statement; a bucket seen for the first time starts full."""
        async with self._pools()[1].acquire() as connection:
            granted = await connection.fetchval(_TAKE, bucket, capacity, per_second, want)
            if granted is None:
                granted = await connection.fetchval(_SEED, bucket, capacity, want)
            if granted is None:
                granted = await connection.fetchval(_TAKE, bucket, capacity, per_second, want)
        return int(granted or 0)

    async def forget_rate_buckets(self, idle: dt.timedelta) -> int:
        """Rate-limit buckets untouched for `idle` (longer than a minute: full again), deleted;
        how many. One asked for again starts full, as it would have been."""
        async with self._pools()[1].acquire() as connection:
            done = await connection.execute(
                "DELETE FROM rate_buckets WHERE at < clock_timestamp() - $1::interval", idle
            )
        return int(done.split()[-1])

    async def forget_job_log(self, kept: dt.timedelta) -> int:
        """The job queue's log (a row per status change of each job, a failure's traceback with
        it) and its per-second statistics older than `kept`, deleted; how many log rows. PgQueuer
        keeps both for ever: a receiver that refuses every delivery grew the log by 300 MB in 20
        minutes. A job kept as failed keeps its log, the traceback to look at before queueing it
        again."""
        async with self._pools()[1].acquire() as connection:
            done = await connection.execute(
                "DELETE FROM pgqueuer_log WHERE created < clock_timestamp() - $1::interval"
                " AND job_id NOT IN (SELECT id FROM pgqueuer WHERE status = 'failed')",
                kept,
            )
            await connection.execute(
                "DELETE FROM pgqueuer_statistics WHERE created < clock_timestamp() - $1::interval", kept
            )
        return int(done.split()[-1])

    async def plan(self, code: str, version: int) -> Plan | None:
        """A published plan version (kept in memory once read: versions never change). Every
        check asks: a known version costs no connection."""
        known = known_plan_version(code, version)
        if known is not None:
            return known
        async with self._pools()[0].acquire() as connection:
            return await plan_version(PgStatements(connection), code, version)

    async def dispose(self) -> None:
        if self._shared_reads is not None:
            await self._shared_reads.close()
        for pool in (self._read_pool, self._write_pool):
            if pool is not None:
                await pool.close()
        if self._engine is not None:
            await self._engine.dispose()


# The bucket refilled since it was last touched, `want` tokens (or what it holds) taken from it,
# and the grant returned (no row: the bucket is new).
_TAKE = """
WITH current AS (
    SELECT least($2::float8, tokens + $3::float8 * extract(epoch FROM clock_timestamp() - at)) AS tokens
    FROM rate_buckets WHERE bucket = $1 FOR UPDATE
), taken AS (
    SELECT tokens, least($4::float8, floor(tokens)) AS grant FROM current
)
UPDATE rate_buckets b SET tokens = taken.tokens - taken.grant, at = clock_timestamp()
FROM taken WHERE b.bucket = $1
RETURNING taken.grant
"""
# A new bucket, full, less what is taken now (no row: another worker made it first).
_SEED = """
INSERT INTO rate_buckets (bucket, tokens, at)
VALUES ($1, $2::float8 - least($3::float8, floor($2::float8)), clock_timestamp())
ON CONFLICT (bucket) DO NOTHING
RETURNING least($3::float8, floor($2::float8))
"""

READ_ONLY = {"GET", "HEAD"}


async def provide_session(
    services: Injected[Services], request: Request[Any, Any, Any]
) -> AsyncGenerator[AsyncSession, None]:
    """One unit of work per request: committed when the handler returns (`unit_of_work.commit`:
    the touched products' snapshots are rewritten first), rolled back if it raises.
    Reads (GET, and handlers marked `opt={"read_only": True}`) get an autocommit session.

    Built from the request's `services`, so that a handler taking both resolves one dependency,
    then the other, never the two together (see `api.dependencies`)."""
    db = services.db
    if request.method in READ_ONLY or request.route_handler.opt.get("read_only"):
        async with db.readers() as reader:
            yield reader
        return
    async with db.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await commit(session)
