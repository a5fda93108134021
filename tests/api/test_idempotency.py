import asyncio
import datetime as dt
import json

import httpx
import msgspec
import pytest
from sqlalchemy import func, select, text, update

from api.app import CoverlineApp
from api.tables import IdempotentRequestRow
from tests.api.shop import Shop
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


async def test_twenty_concurrent_requests_with_one_key_make_one_customer(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "one-customer"}
    body = {"name": "Twenty At Once", "country": "PH"}  # nothing unique: only the key stops a second
    responses = await asyncio.gather(
        *(client.post("/v1/customers", json=body, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    async with app.state.db.sessions() as session:
        count = await session.scalar(text("SELECT count(*) FROM customers WHERE name = 'Twenty At Once'"))
    assert count == 1


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


@pytest.mark.usefixtures("demo_catalog")
async def test_a_retry_the_moment_the_answer_arrives_replays_it(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    """The answer is stored before it is sent: no sequential retry ever meets "in progress"."""
    for n in range(30):
        headers = {**keys.auth("checkout"), "Idempotency-Key": f"seq-{n}"}
        first = await client.post("/v1/offers", json=BODY, headers=headers)
        again = await client.post("/v1/offers", json=BODY, headers=headers)
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content


@pytest.mark.usefixtures("demo_catalog")
async def test_the_same_json_in_other_whitespace_and_order_is_the_same_request(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "spacing", "Content-Type": "application/json"}
    first = await client.post("/v1/offers", content=json.dumps(BODY).encode(), headers=headers)
    product = dict(reversed(list(BODY["product"].items())))
    spaced = json.dumps({"product": product}, indent=4).encode()
    again = await client.post("/v1/offers", content=spaced, headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


@pytest.mark.usefixtures("demo_catalog")
async def test_a_replay_restores_content_language_and_the_stored_answer_is_sealed(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "sv-offers", "Accept-Language": "sv"}
    first = await client.post("/v1/offers", json=BODY, headers=headers)
    again = await client.post("/v1/offers", json=BODY, headers=headers)
    assert first.headers["content-language"] == again.headers["content-language"] == "sv"
    token = first.json()["offers"][0]["offer_token"]
    async with app.state.db.sessions() as session:
        stored = await session.scalar(
            select(IdempotentRequestRow.body).where(IdempotentRequestRow.key == "sv-offers")
        )
    assert stored is not None
    assert token.encode() not in stored
    assert b"offer_token" not in stored


async def test_a_request_in_flight_answers_409_with_retry_after_then_is_taken_over(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    """A server that died mid-request leaves its key in flight: a retry waits out the lease
    (2 s in tests), then runs the request itself."""
    headers = {**keys.auth("checkout"), "Idempotency-Key": "orphaned", "Content-Type": "application/json"}
    body = json.dumps({"name": "Ana Reyes", "country": "PH"}).encode()
    first = await client.post("/v1/customers", content=body, headers=headers)
    assert first.status_code == 201
    async with app.state.db.sessions() as session, session.begin():  # as if it never finished
        await session.execute(
            update(IdempotentRequestRow)
            .where(IdempotentRequestRow.key == "orphaned")
            .values(status_code=None, body=None, created_at=dt.datetime.now(dt.UTC))
        )
    waiting = await client.post("/v1/customers", content=body, headers=headers)
    assert waiting.status_code == 409
    assert 1 <= int(waiting.headers["retry-after"]) <= 2
    async with app.state.db.sessions() as session, session.begin():  # the lease has passed
        await session.execute(
            update(IdempotentRequestRow)
            .where(IdempotentRequestRow.key == "orphaned")
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3))
        )
    taken = await client.post("/v1/customers", content=body, headers=headers)
    assert taken.status_code == 201
    assert "idempotent-replayed" not in taken.headers
    replayed = await client.post("/v1/customers", content=body, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == taken.json()


@pytest.mark.usefixtures("demo_catalog")
async def test_an_answer_over_the_cap_is_not_kept_and_frees_its_key(
    client: httpx.AsyncClient, app: CoverlineApp, keys: Keys
) -> None:
    headers = {**keys.auth("checkout"), "Idempotency-Key": "large"}
    app.state.settings = msgspec.structs.replace(app.state.settings, replay_max_bytes=64)
    first = await client.post("/v1/offers", json=BODY, headers=headers)
    assert first.status_code == 200
    async with app.state.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotentRequestRow)) == 0


async def test_a_batch_check_is_answered_afresh_and_keeps_no_reply(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp
) -> None:
    """It changes nothing: a stored reply (60 kB, sealed, kept a day) made each one 2.5 times
    slower and grew the table by 8 MB a second under load."""
    contract = await shop.sell()
    body = {"lookups": [{"contract_id": contract["id"]}]}
    headers = {**keys.auth("support"), "Idempotency-Key": "batch-1"}
    first = await client.post("/v1/entitlements/check", json=body, headers=headers)
    assert first.status_code == 200, first.text
    await shop.lifecycle(contract["id"], "cancel", "c-batch")
    again = await client.post("/v1/entitlements/check/", json=body, headers=headers)  # the same route
    assert "idempotent-replayed" not in again.headers
    assert again.json()["results"][0]["covered"] is False  # as it is now, not as it was
    async with app.state.db.sessions() as session:
        kept = await session.scalar(select(func.count()).select_from(IdempotentRequestRow))
    assert kept == 0
