import asyncio
import datetime as dt

import httpx
import pytest
from sqlalchemy import func, select, update

from api.app import CoverlineApp
from api.tables import IdempotentRequestRow
from tests.conftest import Keys

BODY = {
    "product": {
        "category": "phone",
        "sku": "S1",
        "price": {"amount": 30000, "currency": "USD"},
        "purchase_date": "2026-01-01",
        "country": "US",
    }
}


@pytest.mark.usefixtures("demo_catalog")
async def test_same_key_same_body_replays_the_first_response(client: httpx.AsyncClient, keys: Keys) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "order-42"}
    first = await client.post("/v1/offers", json=BODY, headers=headers)
    again = await client.post("/v1/offers", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # same offer ids, same tokens
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    fresh = await client.post("/v1/offers", json=BODY, headers=keys.auth("checkout"))
    assert fresh.json()["offers"][0]["offer_id"] != first.json()["offers"][0]["offer_id"]


async def test_same_key_different_body_is_a_problem(client: httpx.AsyncClient, keys: Keys) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "order-43"}
    await client.post("/v1/offers", json=BODY, headers=headers)
    other = {"product": {**BODY["product"], "sku": "S2"}}
    response = await client.post("/v1/offers", json=other, headers=headers)
    assert response.status_code == 422
    assert response.json()["type"].endswith("idempotency-key-reused")


async def test_keys_belong_to_the_api_key_that_used_them(client: httpx.AsyncClient, keys: Keys) -> None:
    first = await client.post(
        "/v1/offers", json=BODY, headers={**keys.auth("checkout"), "Idempotency-Key": "k"}
    )
    second = await client.post(
        "/v1/offers", json=BODY, headers={**keys.auth("admin"), "Idempotency-Key": "k"}
    )
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in second.headers


async def test_keys_expire_after_24_hours(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "old"}
    await client.post("/v1/offers", json=BODY, headers=headers)
    async with app.state.db.sessions() as session, session.begin():
        await session.execute(
            update(IdempotentRequestRow).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))
        )
    other = {"product": {**BODY["product"], "sku": "S9"}}
    response = await client.post("/v1/offers", json=other, headers=headers)
    assert response.status_code == 200
    assert "idempotent-replayed" not in response.headers


@pytest.mark.parametrize("key", ["", "x" * 256])
async def test_malformed_keys_are_refused(client: httpx.AsyncClient, keys: Keys, key: str) -> None:
    response = await client.post(
        "/v1/offers", json=BODY, headers={**keys.auth("checkout"), "Idempotency-Key": key}
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("invalid-idempotency-key")


async def test_concurrent_duplicates_run_the_request_once(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(client.post("/v1/offers", json=BODY, headers=headers) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}
    bodies = {r.content for r in responses if r.status_code == 200}
    assert len(bodies) == 1  # every success is the one stored response
    async with app.state.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotentRequestRow)) == 1
