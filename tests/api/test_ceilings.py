"""Amounts are bounded: a product's price, the price in an offer's product facts and a claim's
amount lie between 0 and their currency's ceiling (about USD 100,000 by default, per currency in
the settings), so an int64 price never buys a plan nor a claim pays one."""

from __future__ import annotations

import datetime as dt

import pytest

from api.app import create_app
from api.settings import MissingSetting, load_settings
from entitlements.money import DEFAULT_CEILINGS
from tests.api.shop import Shop
from tests.conftest import Keys, make_settings, serving

INT64 = 2**63 - 1


async def test_a_price_or_claim_past_the_ceiling_is_a_problem_naming_the_field(shop: Shop) -> None:
    customer = await shop.customer()
    for price in (DEFAULT_CEILINGS["USD"] + 1, INT64):
        response = await shop.client.post(
            "/v1/products",
            json={
                "customer_id": customer["id"],
                "sku": "S",
                "serial": "SN-CEILING-1",
                "category": "phone",
                "price": {"amount": price, "currency": "USD"},
                "purchase_date": dt.date.today().isoformat(),
            },
            headers=shop.keys.auth("checkout"),
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "price.amount"
    offers = await shop.client.post(
        "/v1/offers",
        json={
            "product": {
                "category": "phone",
                "sku": "S",
                "price": {"amount": INT64, "currency": "PHP"},
                "purchase_date": dt.date.today().isoformat(),
                "country": "PH",
            }
        },
        headers=shop.keys.auth("publishable"),
    )
    assert offers.status_code == 422 and offers.json()["errors"][0]["field"] == "product.price.amount"
    contract = await shop.sell()
    claim = await shop.claim(
        422, contract_id=contract["id"], amount={"amount": INT64 // 2, "currency": "USD"}
    )
    assert claim["errors"][0]["field"] == "amount.amount"
    assert (await shop.claim(contract_id=contract["id"], amount={"amount": 50000, "currency": "USD"}))[
        "status"
    ]


async def test_a_deployment_sets_its_own_ceilings(database_url: str, keys: Keys) -> None:
    app = create_app(make_settings(database_url, amount_ceilings={"USD": 1000}))
    try:
        async with serving(app) as client:
            customer = (
                await client.post(
                    "/v1/customers",
                    json={"name": "A", "country": "US", "time_zone": "America/Chicago"},
                    headers=keys.auth("checkout"),
                )
            ).json()
            body = {
                "customer_id": customer["id"],
                "sku": "S",
                "serial": "SN-CEILING-2",
                "category": "phone",
                "price": {"amount": 1001, "currency": "USD"},
                "purchase_date": dt.date.today().isoformat(),
            }
            refused = await client.post("/v1/products", json=body, headers=keys.auth("checkout"))
            assert refused.status_code == 422 and "10.00 USD" in refused.json()["detail"]
    finally:
        create_app(make_settings(database_url))  # the default ceilings back, for the tests after
    assert load_settings({"COVERLINE_AMOUNT_CEILINGS": "USD=500, PHP=9"}).amount_ceilings == {
        "USD": 500,
        "PHP": 9,
    }
    with pytest.raises(MissingSetting):
        load_settings({"COVERLINE_AMOUNT_CEILINGS": "XXX=1"})
