import asyncio
import datetime as dt

import httpx
import pytest

from tests.api.shop import Shop, customer_today
from tests.conftest import Keys


async def test_claims_consume_the_limit_and_a_void_gives_it_back(shop: Shop) -> None:
    contract = await shop.sell()
    first = await shop.claim(contract_id=contract["id"], amount={"amount": 20000, "currency": "USD"})
    assert first["status"] == "approved"
    assert first["deductible"] == {"amount": 2900, "currency": "USD"}
    assert first["covered_amount"] == {"amount": 17100, "currency": "USD"}
    second = await shop.claim(serial=contract["serial"].lower() + " ")  # found by normalized serial
    assert second["contract_id"] == contract["id"]
    third = await shop.claim(contract_id=contract["id"])
    assert (third["status"], third["reason"]) == ("denied", "limit_reached")
    answer = await shop.check(contract_id=contract["id"], incident="screen")
    assert (answer["covered"], answer["reason"]) == (False, "limit_reached")
    assert answer["products"][0]["contracts"][0]["remaining_claims"] == 0
    voided = await shop.call("POST", f"/v1/claims/{first['id']}/void", "support")
    assert voided["status"] == "voided"
    assert (await shop.check(contract_id=contract["id"]))["products"][0]["contracts"][0][
        "remaining_claims"
    ] == 1
    history = await shop.call("GET", f"/v1/contracts/{contract['id']}/history", "support")
    assert [h["action"] for h in history["data"]][-4:] == [
        "claim_approved",
        "claim_approved",
        "claim_denied",
        "claim_voided",
    ]


async def test_a_claim_is_idempotent_by_reference(shop: Shop) -> None:
    contract = await shop.sell()
    first = await shop.claim(contract_id=contract["id"], reference="ZD-1001")
    again = await shop.claim(contract_id=contract["id"], reference="ZD-1001")
    assert first["id"] == again["id"]
    assert (await shop.check(contract_id=contract["id"]))["products"][0]["contracts"][0][
        "remaining_claims"
    ] == 1
    # Another claim under the same reference is refused, not answered with the first.
    other = await shop.client.post(
        "/v1/claims",
        json={
            "reference": "ZD-1001",
            "contract_id": contract["id"],
            "incident_kind": first["incident_kind"],
            "incident_date": first["incident_date"],
            "amount": {"amount": first["amount"]["amount"] + 100, "currency": first["amount"]["currency"]},
        },
        headers=shop.keys.auth("support"),
    )
    assert other.status_code == 409 and other.json()["errors"][0]["field"] == "reference"


async def test_last_months_incident_is_judged_by_last_months_coverage(shop: Shop) -> None:
    contract = await shop.sell("test-monthly")
    end = dt.datetime.fromisoformat(contract["coverage_periods"][0]["end"])
    await shop.lifecycle(contract["id"], "past_due", "inv-2-failed", at=end)
    await shop.lifecycle(contract["id"], "lapse", "sub-deleted", at=end + dt.timedelta(days=14))
    # Filed today, for an incident while the contract was paid: approved.
    claim = await shop.claim(contract_id=contract["id"], incident_date=customer_today().isoformat())
    assert claim["status"] == "approved"


async def test_aggregate_is_capped_at_the_product_price(shop: Shop) -> None:
    contract = await shop.sell(price=10000)
    claim = await shop.claim(
        contract_id=contract["id"],
        incident_kind="mechanical_breakdown",
        amount={"amount": 25000, "currency": "USD"},
    )
    assert claim["covered_amount"] == {"amount": 10000, "currency": "USD"}
    answer = await shop.check(contract_id=contract["id"])
    assert (answer["covered"], answer["reason"]) == (False, "limit_reached")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"incident_kind": "meteor"}, 422, "body.incident_kind"),
        ({"incident_date": "2999-01-01"}, 422, "incident_date"),
        ({"incident_date": "0001-01-01"}, 422, "incident_date"),
        ({"amount": {"amount": 100, "currency": "SEK"}}, 422, "amount.currency"),
        ({"amount": {"amount": 1.5, "currency": "USD"}}, 422, "body.amount.amount"),
        ({"contract_id": None, "serial": "NOPE-404"}, 404, "serial"),
    ],
)
async def test_bad_claims_write_nothing(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, body: dict[str, object], status: int, field: str
) -> None:
    contract = await shop.sell()
    payload = {
        "reference": "bad-1",
        "incident_kind": "screen",
        "incident_date": customer_today().isoformat(),
        "amount": {"amount": 100, "currency": "USD"},
        "contract_id": contract["id"],
        **body,
    }
    response = await client.post(
        "/v1/claims", json={k: v for k, v in payload.items() if v is not None}, headers=keys.auth("support")
    )
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field
    history = await shop.call("GET", f"/v1/contracts/{contract['id']}/history", "support")
    assert not any(h["action"].startswith("claim_") for h in history["data"])


async def test_a_claim_on_another_customers_contract_is_refused(shop: Shop) -> None:
    contract = await shop.sell()
    stranger = await shop.customer()
    problem = await shop.claim(422, contract_id=contract["id"], customer_id=stranger["id"])
    assert problem["errors"][0]["field"] == "customer_id"


async def test_fifty_simultaneous_claims_approve_exactly_two(
    database_url: str, shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    contract = await shop.sell()
    body = {
        "incident_kind": "screen",
        "incident_date": customer_today().isoformat(),
        "amount": {"amount": 5000, "currency": "USD"},
        "contract_id": contract["id"],
    }
    responses = await asyncio.gather(
        *(
            client.post("/v1/claims", json={**body, "reference": f"race-{i}"}, headers=keys.auth("support"))
            for i in range(50)
        )
    )
    assert {r.status_code for r in responses} == {201}
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("approved") == 2
    assert statuses.count("denied") == 48
    remaining = (await shop.check(contract_id=contract["id"]))["products"][0]["contracts"][0][
        "remaining_claims"
    ]
    assert remaining == 0
