import datetime as dt

import httpx
import pytest

from tests.api.shop import Shop
from tests.conftest import Keys


async def test_every_lookup_finds_the_same_coverage(shop: Shop) -> None:
    customer = await shop.customer()
    product = await shop.product(customer["id"], imei="49-015420-323751-8", order_ref="ORD-77")
    contract = await shop.open_contract(customer, product)
    await shop.lifecycle(contract["id"], "payment", "pay-1")
    for params in (
        {"serial": product["serial"]},
        {"imei": "490154203237518"},
        {"contract_id": contract["id"]},
        {"customer_id": customer["id"]},
        {"order_ref": "ORD-77"},
    ):
        answer = await shop.check(**params)
        assert answer["covered"] is True, params
        assert [p["product_id"] for p in answer["products"]] == [product["id"]]


async def test_unknown_products_have_no_contract(shop: Shop) -> None:
    answer = await shop.check(serial="NEVER-SOLD-1", locale="sv")
    assert (answer["covered"], answer["reason"], answer["products"]) == (False, "no_contract", [])
    assert answer["locale"] == "sv"
    assert answer["summary"] != (await shop.check(serial="NEVER-SOLD-1", locale="en"))["summary"]


@pytest.mark.parametrize("locale", ["en", "fil", "hi", "sv", "ar", "vi"])
async def test_the_summary_speaks_the_callers_language(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, locale: str
) -> None:
    contract = await shop.sell()
    answer = await shop.check(serial=contract["serial"], incident="screen", locale=locale)
    assert answer["locale"] == locale
    english = await shop.check(serial=contract["serial"], incident="screen", locale="en")
    if locale != "en":
        assert answer["summary"] != english["summary"]
    by_header = await client.get(
        "/v1/entitlements",
        params={"serial": contract["serial"]},
        headers={**keys.auth("support"), "Accept-Language": f"{locale};q=0.9"},
    )
    assert by_header.headers["content-language"] == locale


async def test_the_summary_formats_money_and_dates_for_the_locale(shop: Shop) -> None:
    contract = await shop.sell(country="SA", currency="SAR", price=300000)
    arabic = await shop.check(serial=contract["serial"], incident="screen", locale="ar")
    assert "٩٩" in arabic["summary"] or "99" in arabic["summary"]  # the 99.00 SAR deductible
    swedish = await shop.check(serial=contract["serial"], incident="screen", locale="sv")
    assert "99,00" in swedish["summary"]


async def test_every_answer_carries_speech_with_the_serial_said_in_groups(shop: Shop) -> None:
    contract = await shop.sell(country="SA", currency="SAR", price=300000)
    serial = contract["serial"]
    answer = await shop.check(serial=serial.lower(), incident="screen", locale="sv")
    speech = answer["speech"]
    assert "speech" not in answer["products"][0]  # the answer speaks for its leading product
    assert " ".join(serial[:4]) in speech["text"]
    assert "99 saudiska riyal" in speech["text"]  # the SAR 99.00 deductible, as it is said
    assert "99,00" in answer["summary"] and "99,00" not in speech["text"]
    assert speech["ssml"].startswith('<speak xml:lang="sv-SE">')
    assert f'<say-as interpret-as="characters">{serial[:4]}</say-as>' in speech["ssml"]
    missing = await shop.check(serial="never-sold-7", locale="en")
    assert missing["speech"]["text"].startswith("Serial number N E V E, R S O L, D 7.")


async def test_batch_checks_many_lookups_in_order(shop: Shop) -> None:
    sold = [await shop.sell() for _ in range(3)]
    lookups = [{"serial": c["serial"]} for c in sold] + [
        {"serial": "UNKNOWN-9"},
        {"contract_id": sold[0]["id"]},
    ]
    answer = await shop.call(
        "POST",
        "/v1/entitlements/check",
        "support",
        json={"lookups": lookups, "incident": "screen", "locale": "vi"},
    )
    results = answer["results"]
    assert [r["covered"] for r in results] == [True, True, True, False, True]
    assert [r["lookup"] for r in results] == lookups
    assert all(r["locale"] == "vi" for r in results)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"serial": "!"}, "serial"),
        ({"imei": "490154203237517"}, "imei"),  # wrong check digit
        ({"imei": "12345"}, "imei"),
        ({"serial": "ABC123", "imei": "490154203237518"}, "lookup"),
        ({}, "lookup"),
        ({"serial": "ABC123", "incident": "meteor"}, "query.incident"),
        ({"serial": "ABC123", "at": "yesterday"}, "query.at"),
        ({"serial": "ABC123", "at": "2026-11-01T10:00:00"}, "query.at"),  # no offset: not guessed
        ({"serial": "ABC123", "at": "1795000000"}, "query.at"),  # nor a number
    ],
)
async def test_bad_lookups_name_the_field(
    client: httpx.AsyncClient, keys: Keys, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/entitlements", params=params, headers=keys.auth("support"))
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field


async def test_batch_limits_and_bad_entries(client: httpx.AsyncClient, keys: Keys) -> None:
    too_many = {"lookups": [{"serial": f"SN{i:05d}"} for i in range(1001)]}
    response = await client.post("/v1/entitlements/check", json=too_many, headers=keys.auth("support"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.lookups"
    mixed = {"lookups": [{"serial": "SN00001"}, {"serial": "SN2", "imei": "490154203237518"}]}
    response = await client.post("/v1/entitlements/check", json=mixed, headers=keys.auth("support"))
    assert response.json()["errors"][0]["field"] == "lookups[1]"
    for bad, field in (
        ({"serial": "S-1"}, "serial"),
        ({"imei": "12"}, "imei"),
        ({"order_ref": " "}, "order_ref"),
    ):
        entries = {"lookups": [{"serial": "SN00001"}, {"serial": "SN00002"}, {"serial": "SN00003"}, bad]}
        response = await client.post("/v1/entitlements/check", json=entries, headers=keys.auth("support"))
        assert response.status_code in (400, 422), response.text
        assert response.json()["errors"][0]["field"] == f"lookups[3].{field}"  # which entry, which field


async def test_every_script_round_trips(shop: Shop) -> None:
    names = ["ماريا سانتوس", "मारिया संतोष", "Nguyễn Thị Hồng Nhung", "Åsa Öberg", "Maria dela Cruz"]
    for name in names:
        created = await shop.customer(name=name, email=None, phone="+46701234567", locale="ar")
        fetched = await shop.call("GET", f"/v1/customers/{created['id']}", "support")
        assert fetched["name"] == name
        found = await shop.call("GET", "/v1/customers", "support", params={"phone": "+46 70 123 45 67"})
        assert name in [c["name"] for c in found["data"]]


async def test_customers_are_found_by_normalized_contacts(shop: Shop) -> None:
    created = await shop.customer(
        email="Maria.Santos@Example.PH", phone="0917 123 4567", country="PH", external_ref="crm-1"
    )
    assert created["email"] == "maria.santos@example.ph"
    assert created["phone"] == "+639171234567"
    for params in (
        {"email": " MARIA.santos@example.ph "},
        {"phone": "+63 917 123 4567"},
        {"external_ref": "crm-1"},
    ):
        found = await shop.call("GET", "/v1/customers", "support", params=params)
        assert [c["id"] for c in found["data"]] == [created["id"]]
    updated = await shop.call("PATCH", f"/v1/customers/{created['id']}", "support", json={"locale": "fil-PH"})
    assert updated["locale"] == "fil"


async def test_serials_are_normalized_and_unique(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    customer = await shop.customer()
    product = await shop.product(customer["id"], serial="ab-123 ")
    assert product["serial"] == "AB123"
    clash = await client.post(
        "/v1/products",
        json={
            "customer_id": customer["id"],
            "sku": "X",
            "category": "phone",
            "price": {"amount": 1, "currency": "USD"},
            "purchase_date": "2026-01-01",
            "serial": "AB123",
        },
        headers=keys.auth("checkout"),
    )
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "serial"


async def test_at_answers_for_the_past(shop: Shop) -> None:
    contract = await shop.sell()
    before_sale = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()
    answer = await shop.check(serial=contract["serial"], at=before_sale)
    assert (answer["covered"], answer["reason"]) == (False, "not_yet_started")


async def test_the_answer_names_the_customers_time_zone_and_shows_their_days(shop: Shop) -> None:
    manila = await shop.customer(country="PH", phone="0917 123 4567")
    assert manila["time_zone"] == "Asia/Manila"  # the Philippines keeps one clock
    refused = await shop.client.post(
        "/v1/customers", json={"name": "Ann", "country": "US"}, headers=shop.keys.auth("checkout")
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "time_zone"
    contract = await shop.sell()
    answer = await shop.check(serial=contract["serial"])
    assert answer["time_zone"] == answer["products"][0]["time_zone"] == "America/New_York"
    customer_id = answer["products"][0]["customer_id"]
    await shop.call("PATCH", f"/v1/customers/{customer_id}", "support", json={"time_zone": "Asia/Tokyo"})
    moved = await shop.check(serial=contract["serial"])
    assert moved["time_zone"] == "Asia/Tokyo"
    unknown = await shop.check(serial="NEVER-SOLD-2")
    assert unknown["time_zone"] == "UTC"


async def test_a_caller_who_asks_for_no_language_hears_the_customers(shop: Shop, keys: Keys) -> None:
    """A phone bot that sends no language gets the customer's; an agent's browser gets the agent's;
    `locale=customer` asks for the customer's whatever the headers say."""
    swede = await shop.customer(country="SE", locale="sv")
    product = await shop.product(swede["id"])
    contract = await shop.open_contract(swede, product)
    await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")
    serial = product["serial"]

    async def check(params: dict[str, str], headers: dict[str, str]) -> httpx.Response:
        found = await shop.client.get(
            "/v1/entitlements",
            params={"serial": serial, **params},
            headers={**keys.auth("support"), **headers},
        )
        assert found.status_code == 200, found.text
        return found

    bot = await check({}, {})
    assert (bot.json()["locale"], bot.headers["content-language"]) == ("sv", "sv")
    assert bot.json()["summary"].startswith("Täckt")
    agent = await check({}, {"Accept-Language": "fil-PH, en;q=0.5"})
    assert agent.json()["locale"] == "fil"
    asked = await check({"locale": "customer"}, {"Accept-Language": "en"})
    assert asked.json()["locale"] == asked.json()["products"][0]["locale"] == "sv"
    other = await shop.sell()  # an English-speaking customer's
    batch = await shop.client.post(
        "/v1/entitlements/check",
        json={"lookups": [{"serial": serial}, {"serial": other["serial"]}]},
        headers=keys.auth("support"),
    )
    assert [r["locale"] for r in batch.json()["results"]] == ["sv", "en"]
    assert batch.headers["content-language"] == "sv, en"


async def test_a_batch_whose_answer_would_be_too_large_is_refused_with_a_problem(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import entitlements.checks.service

    monkeypatch.setattr(entitlements.checks.service, "MAX_ANSWER_PRODUCTS", 3)
    contract = await shop.sell()
    lookups = [{"serial": contract["serial"]}] * 3
    fits = await shop.call("POST", "/v1/entitlements/check", "support", json={"lookups": lookups})
    assert len(fits["results"]) == 3
    response = await shop.client.post(
        "/v1/entitlements/check",
        json={"lookups": [*lookups, {"serial": contract["serial"]}]},
        headers=shop.keys.auth("support"),
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "lookups" and "more than 3 products" in problem["detail"]
