"""Every error is an RFC 9457 problem; nothing internal leaks."""

from typing import Any

import asyncpg
import httpx
import pytest
from litestar import get
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.auth import access_guard
from tests.conftest import Keys, make_settings, serving

PROBLEM_KEYS = {"type", "title", "status"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS and body["status"] == status
    assert body["type"].startswith("urn:coverline:problem:")
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_statuses_are_problems(client: httpx.AsyncClient, keys: Keys) -> None:
    auth = keys.auth("checkout")
    assert_problem(await client.get("/v1/nothing-here", headers=auth), 404)
    assert_problem(await client.delete("/v1/plans", headers=auth), 405)
    assert_problem(await client.get("/v1/plans"), 401)
    assert_problem(await client.post("/v1/offers", json={}, headers=keys.auth("support")), 403)
    assert_problem(
        await client.post("/v1/offers", content=b"{", headers={**auth, "content-type": "application/json"}),
        400,
    )
    assert_problem(
        await client.post(
            "/v1/offers",
            content=b"a=b",
            headers={**auth, "content-type": "application/x-www-form-urlencoded"},
        ),
        415,
    )
    assert_problem(
        await client.post(
            "/v1/offers", content=b'{"product": "\xff"}', headers={**auth, "content-type": "application/json"}
        ),
        400,
    )
    big = b'{"p": "' + b"x" * 1_100_000 + b'"}'
    assert_problem(
        await client.post("/v1/offers", content=big, headers={**auth, "content-type": "application/json"}),
        413,
    )
    body = assert_problem(await client.post("/v1/offers", json={"product": {}}, headers=auth), 422)
    assert body["errors"][0]["field"].startswith("body.product")
    body = assert_problem(await client.get("/v1/plans", params={"category": "car"}, headers=auth), 422)
    assert body["errors"][0]["field"] == "query.category"
    nul = assert_problem(
        await client.get("/v1/customers", params={"external_ref": "a\x00b"}, headers=auth), 400
    )
    assert "NUL" in nul["detail"]
    nul = assert_problem(
        await client.post("/v1/customers", json={"name": "x\x00", "country": "SE"}, headers=auth), 400
    )
    assert "NUL" in nul["detail"]
    body = assert_problem(await client.get("/v1/plans", params={"categroy": "phone"}, headers=auth), 400)
    assert body["detail"] == "unknown query parameter(s): categroy"


async def test_rate_limit_is_a_429_problem(database_url: str, keys: Keys) -> None:
    app = create_app(make_settings(database_url, rate_limit_per_minute=2))
    async with serving(app) as client:
        statuses = [
            (await client.get("/v1/plans", headers=keys.auth("support"))).status_code for _ in range(3)
        ]
        assert statuses[:2] == [200, 200]
        body = assert_problem(await client.get("/v1/plans", headers=keys.auth("support")), 429)
        assert body["type"].endswith("rate-limited")


async def test_one_key_spelled_many_ways_shares_one_rate_limit(database_url: str, keys: Keys) -> None:
    app = create_app(make_settings(database_url, rate_limit_per_minute=3))
    raw = keys.raw["support"]
    spellings = [f"Bearer {raw}", f"bearer {raw}", f"BEARER {raw}", f"Bearer   {raw}  ", f"bEaReR {raw}"]
    async with serving(app) as client:
        statuses = [
            (await client.get("/v1/plans", headers={"Authorization": spelling})).status_code
            for spelling in spellings
        ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_unexpected_errors_leak_nothing(database_url: str, keys: Keys) -> None:
    @get("/v1/boom", guards=[access_guard], opt={"access": frozenset({"admin"})})
    async def boom() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    app = create_app(make_settings(database_url))
    app.register(boom)
    async with serving(app) as client:
        response = await client.get("/v1/boom", headers=keys.auth("admin"))
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text and "secret.py" not in response.text
    assert body["detail"] == "the server could not complete the request"


def _refused_connection(error: Exception) -> DBAPIError:
    """What SQLAlchemy raises when asyncpg cannot get a connection: its adapter's error, caused by
    asyncpg's, wrapped."""
    try:
        try:
            raise error
        except Exception as driver:
            raise AsyncAdapt_asyncpg_dbapi.Error(str(driver)) from driver  # type: ignore[no-untyped-call]
    except Exception as adapted:
        return DBAPIError(None, None, adapted)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.CannotConnectNowError("starting"),
    ],
)
async def test_a_database_that_takes_no_more_clients_is_a_503_to_retry(
    database_url: str, keys: Keys, error: Exception
) -> None:
    """As PostgreSQL answers when every connection slot is taken, or while it starts: unavailable
    for now, not a server error (under load, 'sorry, too many clients already' was a 500)."""

    @get("/v1/full", guards=[access_guard], opt={"access": frozenset({"admin"})})
    async def full() -> None:
        raise _refused_connection(error)

    app = create_app(make_settings(database_url))
    app.register(full)
    async with serving(app) as client:
        response = await client.get("/v1/full", headers=keys.auth("admin"))
    assert_problem(response, 503)
    assert response.headers["retry-after"]


@pytest.mark.parametrize("incoming", ["abc-123", "x" * 200, "bad id with spaces"])
async def test_request_ids_are_echoed_when_sane(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get("/health", headers={"X-Request-Id": incoming})
    if incoming == "abc-123":
        assert response.headers["x-request-id"] == incoming
    else:
        assert response.headers["x-request-id"].startswith("req_")
