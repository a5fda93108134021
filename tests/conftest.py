"""Fixtures: every database test runs on SQLite and on the real PostgreSQL.

The schema is built by the Alembic history, never by `create_all`. PostgreSQL tests are skipped
(with the reason shown) only when no server answers, and never in CI.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import CoverlineApp, create_app
from api.auth import KeyKind, Scope, issue_key
from api.migrate import upgrade
from api.settings import Settings
from entitlements.catalog import decode_catalog
from entitlements.offers import OfferKeyring
from entitlements.store.base import Base
from entitlements.store.plans import PlanRepository

if TYPE_CHECKING:
    from tests.api.shop import Shop

# Property tests judge correctness, not speed: no per-example deadline on a loaded CI machine.
settings.register_profile("coverline", deadline=None)
settings.load_profile("coverline")

ROOT = Path(__file__).resolve().parents[1]
DEMO_CATALOG = ROOT / "catalog" / "demo.toml"
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
TEST_KEYRING = OfferKeyring((("test-2", b"b" * 40), ("test-1", b"a" * 40)))
WEBHOOK_SECRETS = ("whsec_test_current", "whsec_test_previous")


def _postgres_reachable() -> bool:
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError:
        return False
    return True


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, built by the migrations."""
    if not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must answer at {PG_HOST}:{PG_PORT} in CI")
        pytest.skip(f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT}")
    name = f"coverline_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    upgrade(url)
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'coverline.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "offer_keys": TEST_KEYRING,
        "log_level": "WARNING",
        "key_cache_seconds": 0,  # revocations take effect at once in tests
        "stripe_webhook_secrets": WEBHOOK_SECRETS,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _empty_tables(app: CoverlineApp) -> None:
    await empty_tables(app.state.db.engine)


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[CoverlineApp]:
    application = create_app(make_settings(database_url))
    yield application


@asynccontextmanager
async def serving(app: CoverlineApp) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan and an HTTP client on the test's own event loop.

    (Litestar's test client runs the app on a second loop, which asyncpg connections refuse.)
    """
    to_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def send(message: Any) -> None:
        await from_app.put(message)

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, to_app.get, send)
    )
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://coverline.test") as http:
            yield http
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


@pytest.fixture
async def client(app: CoverlineApp) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as http:
        try:
            yield http
        finally:
            await _empty_tables(app)


class Keys:
    """Raw API keys of every kind, made for one test."""

    def __init__(self, raw: dict[str, str], ids: dict[str, str]) -> None:
        self.raw = raw
        self.ids = ids

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.raw[name]}"}


@pytest.fixture
async def keys(client: httpx.AsyncClient, app: CoverlineApp) -> Keys:
    raw: dict[str, str] = {}
    ids: dict[str, str] = {}
    async with app.state.db.sessions() as session, session.begin():
        issued = await issue_key(session, kind=KeyKind.PUBLISHABLE, name="page", scopes=[], live=False)
        raw["publishable"], ids["publishable"] = issued.key, issued.id
        for scope in Scope:
            issued = await issue_key(
                session, kind=KeyKind.SECRET, name=scope.value, scopes=[scope], live=False
            )
            raw[scope.value], ids[scope.value] = issued.key, issued.id
    return Keys(raw, ids)


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> Shop:
    """A checkout and a help desk over the API, with the test plans published."""
    from tests.api.shop import Shop, publish_test_plans  # that module imports this one

    await publish_test_plans(app)
    return Shop(client, keys)


@pytest.fixture
async def demo_catalog(client: httpx.AsyncClient, app: CoverlineApp) -> None:
    plans, problems = decode_catalog(DEMO_CATALOG.read_bytes())
    assert not problems
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish(plans)
