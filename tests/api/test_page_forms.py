"""What a page's form may carry: a body no larger than a form needs, refused before it is read
(a page's form needs no key, so anyone could post one), and no NUL in any field (it reached the
database, which refused it with a 500)."""

from __future__ import annotations

import re

import httpx

from tests.api.shop import Shop
from tests.conftest import Keys


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    [token] = re.findall(r'name="csrf" value="([^"]+)"', page.text)
    return token


async def signed_in(client: httpx.AsyncClient, keys: Keys) -> str:
    """The console's CSRF token, with an agent signed in on `client`."""
    token = await csrf_of(client, "/console/sign-in")
    done = await client.post(
        "/console/sign-in", data={"csrf": token, "agent": "Ann Agent", "key": keys.raw["support"]}
    )
    assert done.status_code == 303, done.text
    return token


async def test_a_form_larger_than_the_limit_is_refused_before_it_is_read(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    token = await csrf_of(client, "/console/sign-in")
    huge = {"csrf": token, "agent": "Ann Agent", "key": keys.raw["support"], "x": "a" * (2 << 20)}
    refused = await client.post("/console/sign-in", data=huge)
    assert refused.status_code == 413, refused.text[:300]
    # Declared small, sent large (chunked): refused as it passes the limit.
    body = b"csrf=" + token.encode() + b"&x=" + b"a" * (2 << 20)

    async def chunks() -> httpx.AsyncByteStream:  # type: ignore[misc]
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = await client.post(
        "/console/sign-in",
        content=chunks(),  # type: ignore[arg-type]
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert (await client.post("/console/sign-in", data={**huge, "x": ""})).status_code == 303


async def test_a_nul_in_a_form_field_is_a_page_naming_the_field_and_changes_nothing(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    token = await signed_in(client, keys)
    contract = await shop.sell()
    moved = await client.post(
        f"/console/contracts/{contract['id']}/transfer", data={"csrf": token, "customer_id": "cus_\x00"}
    )
    assert moved.status_code in (400, 422), moved.text[:300]
    assert moved.headers["content-type"].startswith("text/html")
    assert "customer_id" in moved.text
    after = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert after["customer_id"] == contract["customer"]["id"]
