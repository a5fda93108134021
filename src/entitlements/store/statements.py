"""Statements written once, as SQLAlchemy Core, run by asyncpg in the caller's transaction.

A write path that runs per Stripe event (lock the contract, record the fact, rewrite the
snapshot, write the ledger) is a dozen short statements. Through SQLAlchemy's session each costs
about 400-550 µs of CPU in adapter layers; asyncpg alone runs the same statement in about 100 µs.
So they are written as Core with named `bindparam`s, compiled once per statement to SQL prepared
by asyncpg's statement cache, and run in a unit of work (`unit_of_work`): on a session's own
connection inside its transaction, or on a connection of asyncpg's own pool with no session at
all. Rows come back positional, with aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any, Protocol, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import Insert, Table, TableClause, TextClause
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable, visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

T = TypeVar("T")

Row = Sequence[Any]


class Statements(Protocol):
    async def rows(self, statement: Executable, /, **params: Any) -> list[Row]: ...

    async def row(self, statement: Executable, /, **params: Any) -> Row | None: ...

    async def run(self, statement: Executable, /, **params: Any) -> None: ...

    async def run_many(self, statement: Executable, params: Sequence[Mapping[str, Any]], /) -> None: ...

    async def insert_new(self, table: Table, /, **values: Any) -> bool:
        """Insert a row unless its unique key is taken; True when this one went in. One statement
        (`ON CONFLICT DO NOTHING`) where a look-up and an insert would cost two round trips; on
        PostgreSQL a concurrent insert of the same key waits for the first to commit or roll back."""
        ...


@cache
def _insert_new(table: Table) -> Executable:
    return postgresql.insert(table).on_conflict_do_nothing().returning(next(iter(table.primary_key)))


_PG = asyncpg_dialect()  # type: ignore[no-untyped-call]
_compiled: dict[tuple[ClauseElement, tuple[str, ...]], tuple[str, tuple[str, ...], dict[str, Any]]] = {}


def pg_sql(statement: Executable, params: Mapping[str, Any]) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(SQL with $n placeholders, the bind names in $n order, the binds with values of their own).
    An INSERT without `values()` takes its columns from the parameters, as through the session."""
    assert isinstance(statement, ClauseElement)
    key = (statement, tuple(params) if isinstance(statement, Insert) else ())
    found = _compiled.get(key)
    if found is None:
        compiled: SQLCompiler = statement.compile(  # type: ignore[assignment]
            dialect=_PG, column_keys=list(key[1]) or None
        )
        names = tuple(compiled.positiontup or ())
        fixed = {n: compiled.binds[n].value for n in names if not compiled.binds[n].required}
        found = _compiled[key] = (str(compiled), names, fixed)
    return found


@lru_cache(maxsize=1024)
def tables_of(statement: Executable) -> frozenset[str] | None:
    """The names of the tables a statement reads or writes; None when it holds SQL text, which
    could name any."""
    elements = list(visitors.iterate(statement))  # type: ignore[arg-type]  # every statement is a clause
    if any(isinstance(e, TextClause) for e in elements):
        return None
    return frozenset(e.name for e in elements if isinstance(e, TableClause))


@contextmanager
def constraint_errors(sql: str) -> Iterator[None]:
    """As through the session: a broken constraint is SQLAlchemy's `IntegrityError`."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(sql, None, exc) from exc


def broken_constraint(error: BaseException | None) -> str | None:
    """The name of the constraint PostgreSQL reported broken, through SQLAlchemy's wrapping and
    its driver adapter's; None for any other error."""
    while error is not None:
        name = getattr(error, "constraint_name", None)
        if name is not None:
            return str(name)
        error = getattr(error, "orig", None) or error.__cause__
    return None


class PgStatements:
    """Straight through asyncpg, on a connection inside a transaction: a session's, or one of
    a unit of work's."""

    def __init__(self, connection: asyncpg.Connection[Any] | PoolConnectionProxy[Any]) -> None:
        self.connection = connection

    @staticmethod
    def _args(names: tuple[str, ...], fixed: dict[str, Any], params: Mapping[str, Any]) -> list[Any]:
        return [params[n] if n in params else fixed[n] for n in names]

    async def _call(
        self, method: Callable[..., Awaitable[T]], statement: Executable, params: Mapping[str, Any]
    ) -> T:
        sql, names, fixed = pg_sql(statement, params)
        with constraint_errors(sql):
            return await method(sql, *self._args(names, fixed, params))

    async def rows(self, statement: Executable, /, **params: Any) -> list[Row]:
        return list(await self._call(self.connection.fetch, statement, params))

    async def row(self, statement: Executable, /, **params: Any) -> Row | None:
        found: Row | None = await self._call(self.connection.fetchrow, statement, params)
        return found

    async def run(self, statement: Executable, /, **params: Any) -> None:
        await self._call(self.connection.execute, statement, params)

    async def run_many(self, statement: Executable, params: Sequence[Mapping[str, Any]], /) -> None:
        if params:
            sql, names, fixed = pg_sql(statement, params[0])
            with constraint_errors(sql):
                await self.connection.executemany(sql, [self._args(names, fixed, p) for p in params])

    async def insert_new(self, table: Table, /, **values: Any) -> bool:
        return await self.row(_insert_new(table), **values) is not None
