import asyncio

import httpx
import pytest

from api.app import CoverlineApp, create_app
from api.auth import KeyCache
from api.keys import hash_key, revoke_key
from api.tables import ApiKeyRow
from tests.conftest import Keys, make_settings, serving

OFFER = {
    "product": {
        "category": "phone",
        "sku": "S1",
        "price": {"amount": 30000, "currency": "USD"},
        "purchase_date": "2026-01-01",
        "country": "US",
    }
}


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer sk_test_not_a_key", "Basic Zm9vOmJhcg==", "sk_test_x"]
)
async def test_missing_or_wrong_keys_are_401(
    client: httpx.AsyncClient, keys: Keys, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.get("/v1/plans", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("who", "status"),
    [("publishable", 200), ("checkout", 200), ("admin", 200), ("support", 403), ("finance", 403)],
)
async def test_offers_need_a_publishable_or_checkout_key(
    client: httpx.AsyncClient, keys: Keys, who: str, status: int
) -> None:
    response = await client.post("/v1/offers", json=OFFER, headers=keys.auth(who))
    assert response.status_code == status, response.text


async def test_a_revoked_key_is_401_at_once(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> None:
    assert (await client.get("/v1/plans", headers=keys.auth("support"))).status_code == 200
    async with app.state.db.sessions() as session, session.begin():
        await revoke_key(session, keys.ids["support"])
    assert (await client.get("/v1/plans", headers=keys.auth("support"))).status_code == 401


async def test_only_a_hash_of_each_key_is_stored(app: CoverlineApp, keys: Keys) -> None:
    async with app.state.db.sessions() as session:
        row = await session.get(ApiKeyRow, keys.ids["admin"])
    assert row is not None
    assert row.secret_hash == hash_key(keys.raw["admin"])
    assert keys.raw["admin"] not in (row.secret_hash, row.hint, row.name)
    assert keys.raw["admin"].startswith("sk_test_") and keys.raw["publishable"].startswith("pk_test_")


async def test_a_worker_trusts_a_key_lookup_for_the_cache_window(database_url: str, keys: Keys) -> None:
    app = create_app(make_settings(database_url, key_cache_seconds=60))
    async with serving(app) as cached:
        assert (await cached.get("/v1/plans", headers=keys.auth("finance"))).status_code == 200
        async with app.state.db.sessions() as session, session.begin():
            await revoke_key(session, keys.ids["finance"])
        # Within the window the worker's earlier lookup still stands; a fresh worker refuses at once.
        assert (await cached.get("/v1/plans", headers=keys.auth("finance"))).status_code == 200
    fresh = create_app(make_settings(database_url, key_cache_seconds=60))
    async with serving(fresh) as client:
        assert (await client.get("/v1/plans", headers=keys.auth("finance"))).status_code == 401


async def test_requests_that_miss_the_key_cache_together_share_one_lookup(
    app: CoverlineApp, keys: Keys
) -> None:
    asked: list[str] = []

    class CountingDatabase:
        async def active_key(self, secret_hash: str) -> tuple[str, str, str, str | None] | None:
            asked.append(secret_hash)
            await asyncio.sleep(0.01)
            return await app.state.db.active_key(secret_hash)

    cache = KeyCache(CountingDatabase(), seconds=60)  # type: ignore[arg-type]
    found = await asyncio.gather(*(cache.principal(keys.raw["support"]) for _ in range(20)))
    assert len(asked) == 1
    assert {p.key_id for p in found if p is not None} == {keys.ids["support"]} and None not in found
    assert await cache.principal(keys.raw["support"]) == found[0] and len(asked) == 1  # remembered
    assert await cache.principal("sk_test_" + "u" * 43) is None and len(asked) == 2


async def test_tokens_that_cannot_be_keys_are_neither_looked_up_nor_remembered(app: CoverlineApp) -> None:
    asked: list[str] = []

    class CountingDatabase:
        async def active_key(self, secret_hash: str) -> tuple[str, str, str, str | None] | None:
            asked.append(secret_hash)
            return None

    cache = KeyCache(CountingDatabase(), seconds=60)  # type: ignore[arg-type]
    for n in range(300):  # a stranger's tokens: long, odd, never a key of ours
        assert await cache.principal(f"{n}" + "x" * 60_000) is None
        assert await cache.principal(f"sk_test_{n}\u202e" + "y" * 40) is None
    assert asked == [] and cache._entries == {}
    for n in range(KeyCache.MAX_ENTRIES + 5):  # well formed and unknown: asked, remembered, bounded
        await cache.principal(f"sk_test_{n:043d}")
    assert len(cache._entries) <= KeyCache.MAX_ENTRIES
    assert all(len(key) == 64 for key in cache._entries)  # by hash, not as sent
