"""The Alembic history, up and down, and the models agree with it."""

import asyncio
import unicodedata

import pytest
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


async def _as_replica(url: str, sql: str) -> list[tuple[str, str]]:
    """A statement run with no trigger (no parent rows needed); a SELECT's rows."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute("SET session_replication_role = replica")
        if sql.startswith("SELECT"):
            return [tuple(r) for r in await connection.fetch(sql)]
        await connection.execute(sql)
        return []
    finally:
        await connection.close()


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


def test_customers_recorded_before_zones_get_their_countrys_clock(postgres_admin_url: str) -> None:
    """0013: a Manila customer gets Asia/Manila, in their row and in their products' snapshots;
    a US customer (several clocks) is left without one (UTC)."""
    import asyncpg

    async def run(url: str, sql: str) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            if sql.startswith("SELECT"):
                return await connection.fetch(sql)
            await connection.execute(sql)
            return []
        finally:
            await connection.close()

    with fresh_database(postgres_admin_url, "coverline_zones") as url:
        upgrade(url, "0012")
        asyncio.run(
            run(
                url,
                "INSERT INTO customers (id, name, locale, country, created_at, updated_at) VALUES "
                "('cus_ph', 'Maria', 'fil', 'PH', now(), now()), ('cus_us', 'Ann', 'en', 'US', now(), now());"
                "INSERT INTO products (id, customer_id, sku, category, price_amount, currency, purchase_date,"
                " warranty_months, entitlement, created_at) VALUES ('prd_ph', 'cus_ph', 'S', 'phone', 1, 'PHP',"
                " '2026-01-01', 12, '{\"product_id\": \"prd_ph\"}', now())",
            )
        )
        upgrade(url)
        zones = asyncio.run(run(url, "SELECT id, time_zone FROM customers ORDER BY id"))
        assert [(r["id"], r["time_zone"]) for r in zones] == [("cus_ph", "Asia/Manila"), ("cus_us", None)]
        [snapshot] = asyncio.run(run(url, "SELECT entitlement::jsonb ->> 'time_zone' AS zone FROM products"))
        assert snapshot["zone"] == "Asia/Manila"


def test_rows_stored_before_normalizing_are_normalized_and_duplicates_reported(
    postgres_admin_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """0015: a serial typed in Arabic-Indic digits with a dash, a decomposed name and reference;
    a reference that is another customer's once normalized is reported and both are kept."""
    import asyncpg

    async def run(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetch(sql, *args)
        finally:
            await connection.close()

    decomposed = unicodedata.normalize("NFD", "José")
    with fresh_database(postgres_admin_url, "coverline_normalize") as url:
        upgrade(url, "0014")
        for sql, *args in [
            (
                "INSERT INTO customers (id, name, locale, country, external_ref, created_at, updated_at)"
                " VALUES ($1, $2, 'en', 'SE', $3, now(), now())",
                "cus_a",
                decomposed,
                f"crm-{decomposed}",
            ),
            (
                "INSERT INTO customers (id, name, locale, country, external_ref, created_at, updated_at)"
                " VALUES ('cus_b', 'José', 'en', 'SE', 'crm-José', now(), now())",
            ),
            (
                "INSERT INTO products (id, customer_id, sku, category, price_amount, currency, purchase_date,"
                " warranty_months, serial, entitlement, created_at) VALUES ('prd_a', 'cus_a', 'S', 'phone', 1,"
                " 'SEK', '2026-01-01', 12, 'ab-١٢٣', '{\"serial\": \"ab-١٢٣\"}', now())",
            ),
        ]:
            asyncio.run(run(url, sql, *args))
        upgrade(url)
        customers = asyncio.run(run(url, "SELECT id, name, external_ref FROM customers ORDER BY id"))
        assert [(r["name"], r["external_ref"]) for r in customers] == [
            ("José", f"crm-{decomposed}"),  # the name normalized; the reference left: cus_b has it
            ("José", "crm-José"),
        ]
        [product] = asyncio.run(
            run(url, "SELECT serial, entitlement::jsonb ->> 'serial' AS shown FROM products")
        )
        assert (product["serial"], product["shown"]) == ("AB123", "AB123")
    reported = capfd.readouterr().err
    assert "customers cus_a: external_ref" in reported and "cus_b already has" in reported


def test_a_failed_payment_stored_with_a_suffix_keeps_its_invoices_reference(postgres_admin_url: str) -> None:
    """0030: a failed payment was stored as `<invoice>:failed`; it becomes the invoice's own
    reference beside that invoice's payment, and back on the way down."""
    facts = "SELECT reference, kind FROM contract_events ORDER BY reference, kind"
    with fresh_database(postgres_admin_url, "coverline_facts") as url:
        upgrade(url, "0029")
        asyncio.run(
            _as_replica(
                url,
                "INSERT INTO contract_events (reference, contract_id, kind, applied_at) VALUES"
                " ('in_1:failed', 'ctr_a', 'past_due', now()), ('in_1', 'ctr_a', 'payment', now()),"
                " ('in_2:failed', 'ctr_a', 'past_due', now())",
            )
        )
        upgrade(url)
        assert asyncio.run(_as_replica(url, facts)) == [
            ("in_1", "past_due"),
            ("in_1", "payment"),
            ("in_2", "past_due"),
        ]
        downgrade(url, "0029")
        assert asyncio.run(_as_replica(url, facts)) == [
            ("in_1", "payment"),
            ("in_1:failed", "past_due"),
            ("in_2:failed", "past_due"),
        ]


def test_references_stored_before_they_were_cleaned_are_cleaned_and_clashes_reported(
    postgres_admin_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """0032: a redemption's reference stored decomposed with a space after it is found again as
    it is typed now; one that another's is once cleaned is reported and both are kept."""
    decomposed = unicodedata.normalize("NFD", "Café-1")
    columns = "(id, reference, contract_id, product_id, kind, status, fee, currency, redeemed_at)"
    with fresh_database(postgres_admin_url, "coverline_references") as url:
        upgrade(url, "0031")
        for row_id, reference in (("bnr_a", f"{decomposed} "), ("bnr_b", "Visit-2"), ("bnr_c", " Visit-2")):
            asyncio.run(
                _as_replica(
                    url,
                    f"INSERT INTO benefit_redemptions {columns} VALUES ('{row_id}', '{reference}', 'ctr_a',"
                    " 'prd_a', 'tech_support_session', 'redeemed', 0, 'USD', now())",
                )
            )
        upgrade(url)
        stored = asyncio.run(_as_replica(url, "SELECT id, reference FROM benefit_redemptions ORDER BY id"))
        assert stored == [("bnr_a", "Café-1"), ("bnr_b", "Visit-2"), ("bnr_c", " Visit-2")]
    reported = capfd.readouterr().err
    assert "benefit_redemptions bnr_c: reference" in reported and "bnr_b already has" in reported
