"""The Alembic history, up and down, and the models agree with it."""

import asyncio

from sqlalchemy import inspect

from api.migrate import described_by_models, downgrade, upgrade
from entitlements.store.base import Base, create_engine
from tests.conftest import fresh_database


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


def _round_trip(url: str) -> None:
    upgrade(url)
    assert asyncio.run(_tables(url)) >= {t.name for t in Base.metadata.sorted_tables}
    downgrade(url, "base")
    assert asyncio.run(_tables(url)) <= {"alembic_version"}
    upgrade(url)
    assert asyncio.run(_tables(url)) >= {t.name for t in Base.metadata.sorted_tables}


def test_upgrade_downgrade_upgrade(postgres_admin_url: str) -> None:
    with fresh_database(postgres_admin_url, "coverline_migrations") as url:
        _round_trip(url)


def test_models_and_migrations_agree(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    async def diff() -> list[object]:
        engine = create_engine(database_url)
        async with engine.connect() as connection:
            changes = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_name": described_by_models}),
                    Base.metadata,
                )
            )
        await engine.dispose()
        return list(changes)

    assert asyncio.run(diff()) == []
