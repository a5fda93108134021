import datetime as dt

import httpx
import pytest

from tests.api.shop import Shop
from tests.conftest import Keys


async def test_a_paid_upfront_contract_covers_the_term(shop: Shop) -> None:
    contract = await shop.sell()
    assert contract["status"] == "active"
    [period] = contract["coverage_periods"]
    start, end = dt.datetime.fromisoformat(period["start"]), dt.datetime.fromisoformat(period["end"])
    assert 729 <= (end - start).days <= 731  # 24 months
    answer = await shop.check(serial=contract["serial"].lower(), incident="screen")
    assert answer["covered"] is True
    [product] = answer["products"]
    [entry] = product["contracts"]
    assert entry["deductible"] == {"amount": 2900, "currency": "USD"}
    assert entry["remaining_claims"] == 2
    assert entry["remaining_aggregate"] == {"amount": 80000, "currency": "USD"}
    assert "Screen repair is covered" in answer["summary"]
    assert product["contact"].startswith("m***@")  # masked; no other PII
    assert "Maria" not in str(answer)


async def test_pending_contract_is_not_covered_until_paid(shop: Shop) -> None:
    contract = await shop.sell(pay=False)
    assert contract["status"] == "pending_payment"
    answer = await shop.check(contract_id=contract["id"])
    assert (answer["covered"], answer["reason"]) == (False, "pending_payment")


async def test_payment_is_applied_once_per_reference(shop: Shop) -> None:
    contract = await shop.sell()
    again = await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")
    assert len(again["coverage_periods"]) == 1


async def test_a_later_sale_waits_before_covering(shop: Shop) -> None:
    contract = await shop.sell(purchase_date=dt.date.today() - dt.timedelta(days=20))
    answer = await shop.check(serial=contract["serial"])
    assert (answer["covered"], answer["reason"]) == (False, "waiting_period")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=31)).isoformat()
    assert (await shop.check(serial=contract["serial"], at=later))["covered"] is True


async def test_after_warranty_plan_starts_when_the_warranty_ends(shop: Shop) -> None:
    contract = await shop.sell("test-after-warranty", warranty_months=12)
    answer = await shop.check(serial=contract["serial"])
    assert (answer["covered"], answer["reason"]) == (False, "not_yet_started")
    in_a_year = (dt.datetime.now(dt.UTC) + dt.timedelta(days=370)).isoformat()
    assert (await shop.check(serial=contract["serial"], at=in_a_year))["covered"] is True


async def test_incident_outside_the_plan_is_not_covered(shop: Shop) -> None:
    contract = await shop.sell()
    answer = await shop.check(serial=contract["serial"], incident="theft_loss")
    assert (answer["covered"], answer["reason"]) == (False, "coverage_not_included")


async def test_cancel_ends_coverage_but_the_past_stays_covered(shop: Shop) -> None:
    contract = await shop.sell()
    before = dt.datetime.now(dt.UTC)
    cancelled = await shop.lifecycle(contract["id"], "cancel", "cancel-1")
    assert cancelled["status"] == "cancelled"
    now = await shop.check(contract_id=contract["id"])
    assert (now["covered"], now["reason"]) == (False, "cancelled")
    assert (await shop.check(contract_id=contract["id"], at=before.isoformat()))["covered"] is True


async def test_renewal_grace_and_lapse(shop: Shop) -> None:
    contract = await shop.sell("test-monthly")
    [period] = contract["coverage_periods"]
    end = dt.datetime.fromisoformat(period["end"])
    renewed = await shop.lifecycle(contract["id"], "payment", "invoice-2", at=end - dt.timedelta(hours=1))
    assert len(renewed["coverage_periods"]) == 2
    second_end = dt.datetime.fromisoformat(renewed["coverage_periods"][1]["end"])
    assert renewed["coverage_periods"][1]["start"] == period["end"]  # early renewal loses no days
    overdue = await shop.lifecycle(contract["id"], "past_due", "invoice-3-failed", at=second_end)
    assert overdue["status"] == "past_due"
    in_grace = await shop.check(
        contract_id=contract["id"], at=(second_end + dt.timedelta(days=2)).isoformat()
    )
    assert (in_grace["covered"], in_grace["reason"]) == (False, "past_due_grace")
    assert "overdue" in in_grace["summary"]
    lapsed = await shop.lifecycle(contract["id"], "lapse", "sub-ended")
    assert lapsed["status"] == "lapsed"
    after = await shop.check(contract_id=contract["id"], at=(second_end + dt.timedelta(days=20)).isoformat())
    assert after["reason"] == "lapsed"
    # The paid months stay answerable.
    assert (await shop.check(contract_id=contract["id"], at=(end + dt.timedelta(days=1)).isoformat()))[
        "covered"
    ]


async def test_invalid_transitions_are_conflicts(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    contract = await shop.sell()
    await shop.lifecycle(contract["id"], "cancel", "c-1")
    response = await client.post(
        f"/v1/contracts/{contract['id']}/lifecycle",
        json={"action": "payment", "reference": "late"},
        headers=keys.auth("admin"),
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "status"


async def test_transfer_moves_ownership_and_keeps_history(shop: Shop) -> None:
    contract = await shop.sell()
    buyer = await shop.customer(
        name="Nguyễn Văn An", country="VN", phone="0912 345 678", email=None, locale="vi"
    )
    moved = await shop.call(
        "POST", f"/v1/contracts/{contract['id']}/transfer", "support", json={"customer_id": buyer["id"]}
    )
    assert moved["customer_id"] == buyer["id"]
    answer = await shop.check(customer_id=buyer["id"])
    assert answer["covered"] is True
    assert answer["products"][0]["contact"].startswith("+84")
    assert (await shop.check(customer_id=contract["customer"]["id"]))["products"] == []
    history = await shop.call("GET", f"/v1/contracts/{contract['id']}/history", "support")
    actions = [h["action"] for h in history["data"]]
    assert actions[:4] == ["opened", "paid", "active", "transferred"]
    assert all(h["actor"].startswith("key_") for h in history["data"])


async def test_an_offer_sells_once_and_only_for_its_product(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    customer = await shop.customer()
    product = await shop.product(customer["id"])
    other = await shop.product(customer["id"], price=90000)
    token = await shop.offer_token(product)
    wrong = await client.post(
        "/v1/contracts",
        json={"offer_token": token, "customer_id": customer["id"], "product_id": other["id"]},
        headers=keys.auth("checkout"),
    )
    assert wrong.status_code == 422
    assert "price" in wrong.json()["detail"]
    first = await shop.call(
        "POST",
        "/v1/contracts",
        "checkout",
        json={"offer_token": token, "customer_id": customer["id"], "product_id": product["id"]},
    )
    again = await shop.call(
        "POST",
        "/v1/contracts",
        "checkout",
        json={"offer_token": token, "customer_id": customer["id"], "product_id": product["id"]},
    )
    assert first["id"] == again["id"]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    bad = await client.post(
        "/v1/contracts",
        json={"offer_token": tampered, "customer_id": customer["id"], "product_id": product["id"]},
        headers=keys.auth("checkout"),
    )
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("invalid-offer")


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("checkout", "/v1/entitlements?serial=ABC123", 403),
        ("finance", "/v1/entitlements?serial=ABC123", 403),
        ("finance", "/v1/customers?email=a@b.co", 403),
        ("publishable", "/v1/customers?email=a@b.co", 403),
        ("support", "/v1/entitlements?serial=ABC123", 200),
    ],
)
async def test_scopes_guard_pii_and_entitlements(
    client: httpx.AsyncClient, keys: Keys, who: str, path: str, status: int
) -> None:
    assert (await client.get(path, headers=keys.auth(who))).status_code == status


async def test_an_instant_without_an_offset_is_a_problem_and_changes_nothing(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    contract = await shop.sell(pay=False)
    bare = "2030-01-01T00:00:00"  # no offset: no instant at all
    response = await client.post(
        f"/v1/contracts/{contract['id']}/lifecycle",
        json={"action": "cancel", "reference": f"cancel-{contract['id']}", "at": bare},
        headers=keys.auth("admin"),
    )
    assert response.status_code == 422, response.text
    assert "at" in response.json()["detail"]
    after = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert after["status"] == "pending_payment"
    batch = await client.post(
        "/v1/entitlements/check",
        json={"lookups": [{"serial": contract["serial"]}], "at": bare},
        headers=keys.auth("support"),
    )
    assert batch.status_code == 422, batch.text
