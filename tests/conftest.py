"""Fixtures: every database test runs on PostgreSQL, in a database of its test session (with
`make test`, of its pytest-xdist worker: each worker is a session of its own).

The server is the one at 127.0.0.1:5432 when one answers there (CI, the machines here), else the
embedded one under var/test-postgres, so a machine with no PostgreSQL runs every test too. The
schema is built by the Alembic history, never by `create_all`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from hypothesis import settings
from sqlalchemy import make_url

from api.app import CoverlineApp, create_app, make_gateway
from api.embedded import embedded_url
from api.keys import MERCHANT_SCOPES, KeyKind, issue_key
from api.migrate import upgrade
from api.settings import Settings
from entitlements.catalog import decode_catalog
from entitlements.offers.rules import OfferKeyring
from entitlements.store.base import Base
from entitlements.store.plans import PlanRepository

if TYPE_CHECKING:
    from tests.api.shop import Shop

# Property tests judge correctness, not speed: no per-example deadline on a loaded machine. The
# profile sets how many examples a property gets, not the test: 100 by default, 50 in CI (`ci`:
# derandomized, so a failure there is reproducible from its log), 2,000 with
# HYPOTHESIS_PROFILE=thorough (a search for rarer cases, outside `make test`'s time budget).
settings.register_profile("coverline", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True, max_examples=50)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "coverline"))

ROOT = Path(__file__).resolve().parents[1]
DEMO_CATALOG = ROOT / "catalog" / "demo.toml"
PG_HOST, PG_PORT = "127.0.0.1", 5432
TEST_KEYRING = OfferKeyring((("test-2", b"b" * 40), ("test-1", b"a" * 40)))
WEBHOOK_SECRETS = ("whsec_test_current", "whsec_test_previous")


def _local_server_answers() -> bool:
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The `postgres` database of the server the tests use."""
    if _local_server_answers():
        return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
    return embedded_url(ROOT / "var" / "test-postgres")


async def _admin(admin_url: str, sql: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the tests' server, dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database for this test session, built by the migrations."""
    with fresh_database(postgres_admin_url, "coverline_test") as url:
        upgrade(url)
        yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "offer_keys": TEST_KEYRING,
        "log_level": "WARNING",
        "key_cache_seconds": 0,  # revocations take effect at once in tests
        "stripe_webhook_secrets": WEBHOOK_SECRETS,
        "replay_key": "r" * 32,
        "idempotency_lease_seconds": 2.0,
        # Limits are on by default; a test that wants one sets its own.
        "rate_limit_per_minute": 0,
        "publishable_rate_limit_per_minute": 0,
        # letters written, keys made: a folder per process (pytest-xdist runs two)
        "var_dir": Path(tempfile.gettempdir()) / f"coverline-tests-{os.getpid()}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


# Every table emptied, children first, and the jobs those rows enqueued: one message of
# statements, which PostgreSQL runs as one transaction in one round trip.
_EMPTY = "; ".join(
    [
        *(f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)),
        "DELETE FROM pgqueuer",
    ]
)


async def _empty_tables(app: CoverlineApp) -> None:
    """On a connection the app's pools already hold (before its lifespan ends): a new connection
    and a round trip per table cost a test about 39 ms, this about 14."""
    async with app.state.db.statements() as run:
        await run.connection.execute(_EMPTY)


async def empty_tables(url: str) -> None:
    """The same, in a database no app of this process serves (a live server's)."""
    await _admin(url, _EMPTY)


@pytest.fixture(scope="session")
def shared_app(database_url: str) -> CoverlineApp:
    """One app for the tests that take the default settings: building one costs about 0.1 s, and
    most tests need one. Its lifespan (its pools) runs once per test session, on the session's
    event loop (`_served`: starting and stopping it cost each test 33 ms); each test gets the
    app's changeable parts afresh and its tables emptied."""
    return create_app(make_settings(database_url))


@pytest.fixture
async def app(shared_app: CoverlineApp) -> AsyncIterator[CoverlineApp]:
    settings = shared_app.state.settings
    shared_app.state.gateway = make_gateway(settings)  # the sandbox keeps what it was sent
    yield shared_app
    shared_app.state.settings = settings  # a test may have replaced them


@asynccontextmanager
async def serving(app: CoverlineApp) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan and an HTTP client on the running event loop (the session's).

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


class _Served:
    """The shared app's lifespan, begun by the first test that asks and ended with the session."""

    def __init__(self, app: CoverlineApp) -> None:
        self.app = app
        self.stack = AsyncExitStack()
        self.http: httpx.AsyncClient | None = None

    async def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = await self.stack.enter_async_context(serving(self.app))
        return self.http


@pytest.fixture(scope="session")
async def _served(shared_app: CoverlineApp) -> AsyncIterator[_Served]:
    served = _Served(shared_app)
    yield served
    await served.stack.aclose()


@pytest.fixture
async def client(app: CoverlineApp, _served: _Served) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncExitStack() as own:
        # The shared app is served already; a test's own app runs its own lifespan.
        http = await _served.client() if app is _served.app else await own.enter_async_context(serving(app))
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
        for scope in MERCHANT_SCOPES:
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
