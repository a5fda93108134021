import datetime as dt
from typing import Any

import httpx
import pytest

from entitlements.offers.rules import verify_offer
from tests.conftest import TEST_KEYRING, Keys

pytestmark = pytest.mark.usefixtures("demo_catalog")
TODAY = dt.date.today().isoformat()


def product(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "phone",
        "sku": "PH-GALAXY-A55",
        "price": {"amount": 2499000, "currency": "PHP"},
        "purchase_date": TODAY,
        "country": "PH",
        "serial": "R58N12ABCDE",
    }
    body.update(overrides)
    return body


async def test_checkout_page_gets_php_offers_with_tagalog_terms(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.post(
        "/v1/offers", json={"product": product(), "locale": "fil"}, headers=keys.auth("publishable")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["content-language"] == "fil"
    assert body["locale"] == "fil"
    assert body["offers"], body
    for offer in body["offers"]:
        assert offer["price"]["currency"] == "PHP"
        assert isinstance(offer["price"]["amount"], int) and offer["price"]["amount"] > 0
        assert offer["price"]["display"].startswith("₱")
        assert offer["waiting_period_days"] == 0  # sold at the same checkout
        terms = verify_offer(offer["offer_token"], TEST_KEYRING, dt.datetime.now(dt.UTC))
        assert (terms.plan_code, terms.price.amount) == (offer["plan"]["code"], offer["price"]["amount"])
        assert terms.product.serial == "R58N12ABCDE"
    # Tagalog texts, not the English fallback.
    english = await client.post("/v1/offers", json={"product": product()}, headers=keys.auth("publishable"))
    by_code = {o["plan"]["code"]: o for o in english.json()["offers"]}
    for offer in body["offers"]:
        assert offer["plan"]["terms"] != by_code[offer["plan"]["code"]]["plan"]["terms"]
    # Plans for other categories are listed as ineligible, with the reason.
    reasons = {i["plan_code"]: i["reason"] for i in body["ineligible"]}
    assert "category_not_covered" in reasons.values()


async def test_accept_language_chooses_the_language(client: httpx.AsyncClient, keys: Keys) -> None:
    headers = {**keys.auth("publishable"), "Accept-Language": "de-DE, ar;q=0.9, en;q=0.5"}
    response = await client.post("/v1/offers", json={"product": product()}, headers=headers)
    assert response.json()["locale"] == "ar"
    explicit = await client.post(
        "/v1/offers", json={"product": product(), "locale": "vi-VN"}, headers=headers
    )
    assert explicit.json()["locale"] == "vi"


async def test_a_later_sale_carries_the_waiting_period(client: httpx.AsyncClient, keys: Keys) -> None:
    ten_days_ago = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    response = await client.post(
        "/v1/offers", json={"product": product(purchase_date=ten_days_ago)}, headers=keys.auth("checkout")
    )
    offers = response.json()["offers"]
    assert offers and any(o["waiting_period_days"] > 0 for o in offers)


async def test_zero_decimal_currency_prices_are_whole_dong(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.post(
        "/v1/offers",
        json={
            "product": product(price={"amount": 15_000_000, "currency": "VND"}, country="VN"),
            "locale": "vi",
        },
        headers=keys.auth("publishable"),
    )
    offers = response.json()["offers"]
    assert offers
    assert all(o["price"]["currency"] == "VND" and "," not in o["price"]["display"][-3:] for o in offers)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "spaceship"}, "body.product.category"),
        ({"price": {"amount": 10.5, "currency": "PHP"}}, "body.product.price.amount"),
        ({"price": {"amount": 100, "currency": "XYZ"}}, "body.product.price"),
        ({"purchase_date": "yesterday"}, "body.product.purchase_date"),
        ({"country": "Philippines"}, "body.product.country"),
        ({"sku": ""}, "body.product.sku"),
    ],
)
async def test_bad_products_get_a_problem_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, change: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/v1/offers", json={"product": product(**change)}, headers=keys.auth("publishable")
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_cors_is_allowed_for_offers_only(client: httpx.AsyncClient) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    allowed = await client.options("/v1/offers", headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "*"
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    refused = await client.options("/ready", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
