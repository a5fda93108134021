"""Declarative base, shared column types and the engine factory."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from entitlements.clock import utcnow as utcnow  # the clock, where the store's callers found it
from entitlements.errors import NotFound

R = TypeVar("R")  # a mapped row

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes: a naive one is refused rather than guessed at."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC one is required")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.astimezone(dt.UTC)


def async_url(url: str) -> str:
    """Accept the usual `postgresql://` spellings; use asyncpg."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url.removeprefix(plain)
    return url


def create_engine(url: str, *, pool_size: int = 5, overflow: int = 5, echo: bool = False) -> AsyncEngine:
    # No pre-ping: it would cost a round trip on every checkout; stale connections are
    # recycled instead, and a broken one fails one request, not every request.
    return create_async_engine(
        async_url(url), echo=echo, pool_size=pool_size, max_overflow=overflow, pool_recycle=1800
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def reader_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only: autocommit, so a read costs its query and no BEGIN/COMMIT."""
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)


async def found(
    session: AsyncSession, table: type[R], key: str, what: str, field: str, *, lock: Any = None
) -> R:
    """The row with this key, or a problem naming `field` ("no claim clm_…"). `lock`: SQLAlchemy's
    `with_for_update` (True: `FOR UPDATE`; {"key_share": True}: `FOR NO KEY UPDATE`), the row read
    again as it is."""
    if lock:
        row = await session.get(table, key, with_for_update=lock, populate_existing=True)
    else:
        row = await session.get(table, key)
    if row is None:
        raise NotFound(f"no {what} {key}", field=field)
    return row
