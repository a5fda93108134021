"""One Alembic history serves both databases, up and down."""

import asyncio
import os
import secrets

import asyncpg
import pytest
from sqlalchemy import inspect

from api.migrate import downgrade, upgrade
from entitlements.store.base import Base, create_engine
from tests.conftest import PG_ADMIN_URL


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _round_trip(url: str) -> None:
    upgrade(url)
    assert asyncio.run(_tables(url)) >= {t.name for t in Base.metadata.sorted_tables}
    downgrade(url, "base")
    assert asyncio.run(_tables(url)) <= {"alembic_version"}
    upgrade(url)
    assert asyncio.run(_tables(url)) >= {t.name for t in Base.metadata.sorted_tables}


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path: object) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path}/m.db")


def test_upgrade_downgrade_upgrade_on_postgresql(postgresql_url: str) -> None:
    name = f"coverline_migrations_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        _round_trip(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_models_and_migrations_agree(dialect: str, request: pytest.FixtureRequest) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url: str = request.getfixturevalue(f"{dialect}_url")

    async def diff() -> list[object]:
        engine = create_engine(url)
        async with engine.connect() as connection:
            changes = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        await engine.dispose()
        return list(changes)

    assert asyncio.run(diff()) == []
