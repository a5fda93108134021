"""Alembic environment: the schema's one history, run through asyncpg."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import api.tables  # noqa: F401  (registers the edge's tables)
import billing.tables  # noqa: F401
import entitlements.store.tables  # noqa: F401
from api.migrate import described_by_models
from entitlements.store.base import Base, create_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        from api.embedded import database_url
        from api.settings import load_settings

        settings = load_settings()
        url = database_url(settings.database_url, settings.var_dir)
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_name=described_by_models,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
