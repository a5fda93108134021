"""Included services: redeemed by a support channel (once per reference, counted under the
contract's lock), voided, told as events, and answered by every check: what is left of each, in
the summary and the speech; a service that needs a visit goes to a servicer as a service order."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from api.app import CoverlineApp
from entitlements.catalog import Benefit, BenefitKind, ClaimWindow
from entitlements.store.plans import PlanRepository
from tests.api.shop import Shop, plan_for_tests
from tests.api.test_repairs import servicer
from tests.conftest import Keys

PLAN = plan_for_tests(
    code="test-benefits",
    waiting_period_days=0,
    benefits=[
        Benefit(BenefitKind.TECH_SUPPORT_SESSION, 2, ClaimWindow.ROLLING_12_MONTHS),
        Benefit(BenefitKind.INSTALLATION, 1, visit=True),
        Benefit(BenefitKind.MAINTENANCE_VISIT, 1, fees={"USD": 1500}, visit=True),
    ],
)


@pytest.fixture
async def desk(shop: Shop, app: CoverlineApp) -> Shop:
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([PLAN])
    return shop


async def redeem(shop: Shop, expect: int = 201, agent: str | None = "Ana", **body: Any) -> Any:
    body.setdefault("reference", f"ticket-{id(body)}")
    headers = shop.keys.auth("support") | ({"Coverline-Agent": agent} if agent else {})
    response = await shop.client.post("/v1/benefits/redemptions", json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def benefits(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["kind"]: b for b in answer["products"][0]["contracts"][0]["benefits"]}


async def test_a_help_desk_sees_two_sessions_redeems_one_and_sees_one_left(desk: Shop) -> None:
    contract = await desk.sell("test-benefits")
    before = await desk.check(serial=contract["serial"], locale="sv")
    assert benefits(before)["tech_support_session"] == {
        "kind": "tech_support_session",
        "count": 2,
        "window": "rolling_12_months",
        "remaining": 2,
        "fee": None,
        "visit": False,
    }
    assert benefits(before)["maintenance_visit"]["fee"] == {"amount": 1500, "currency": "USD"}

    redeemed = await redeem(
        desk,
        reference="ZD-77",
        kind="tech_support_session",
        serial=contract["serial"].lower(),
        channel="phone",
    )
    assert (redeemed["contract_id"], redeemed["status"], redeemed["redeemed_by"]) == (
        contract["id"],
        "redeemed",
        "Ana",
    )
    assert redeemed["fee"] == {"amount": 0, "currency": "USD"}
    assert redeemed["service_order"] is None

    after = await desk.check(serial=contract["serial"])
    assert benefits(after)["tech_support_session"]["remaining"] == 1
    assert "Technical support session included: 1 remaining." in after["summary"]
    assert "Technical support session included: 1 remaining." in after["speech"]["text"]
    assert (
        "Maintenance visit included, for a fee of 15 US dollars each: 1 remaining." in after["speech"]["text"]
    )
    swedish = await desk.check(serial=contract["serial"], locale="sv")
    assert swedish["summary"] != after["summary"] and "1" in swedish["summary"]


async def test_the_same_reference_redeems_once_and_another_use_of_it_is_refused(desk: Shop) -> None:
    contract = await desk.sell("test-benefits")
    first = await redeem(desk, reference="ZD-1", kind="tech_support_session", contract_id=contract["id"])
    again = await redeem(desk, reference="ZD-1", kind="tech_support_session", contract_id=contract["id"])
    assert again["id"] == first["id"]
    assert benefits(await desk.check(contract_id=contract["id"]))["tech_support_session"]["remaining"] == 1
    other = await redeem(desk, 409, reference="ZD-1", kind="installation", contract_id=contract["id"])
    assert other["errors"][0]["field"] == "reference"
    # As typed: composed or decomposed, with space around it, one reference, one use.
    accented = await redeem(desk, reference="Zoé-2", kind="tech_support_session", contract_id=contract["id"])
    retyped = await redeem(
        desk, reference=" Zoe\u0301-2 ", kind="tech_support_session", contract_id=contract["id"]
    )
    assert retyped["id"] == accented["id"]
    assert benefits(await desk.check(contract_id=contract["id"]))["tech_support_session"]["remaining"] == 0


async def test_none_left_not_included_or_not_in_force_is_refused_with_its_reason(desk: Shop) -> None:
    contract = await desk.sell("test-benefits")
    for reference in ("a", "b"):
        await redeem(desk, reference=reference, kind="tech_support_session", contract_id=contract["id"])
    used_up = await redeem(desk, 409, reference="c", kind="tech_support_session", contract_id=contract["id"])
    assert used_up["type"] == "urn:coverline:problem:not-redeemable"
    assert "benefit_used_up" in used_up["detail"]
    missing = await redeem(desk, 409, reference="d", kind="training_session", contract_id=contract["id"])
    assert "benefit_not_included" in missing["detail"]
    unpaid = await desk.sell("test-benefits", pay=False)
    pending = await redeem(desk, 409, reference="e", kind="tech_support_session", contract_id=unpaid["id"])
    assert "pending_payment" in pending["detail"]
    assert benefits(await desk.check(contract_id=unpaid["id"]))["tech_support_session"]["remaining"] == 0
    page = await desk.call(
        "GET", "/v1/benefits/redemptions", "support", params={"contract_id": contract["id"]}
    )
    assert [r["reference"] for r in page["data"]] == ["a", "b"]  # refusals write nothing


async def test_a_void_gives_the_use_back_and_both_moves_are_events(desk: Shop) -> None:
    contract = await desk.sell("test-benefits")
    redeemed = await redeem(desk, reference="ZD-9", kind="tech_support_session", contract_id=contract["id"])
    voided = await desk.call(
        "POST",
        f"/v1/benefits/redemptions/{redeemed['id']}/void",
        "support",
        json={"reason": "booked on the wrong customer"},
    )
    assert (voided["status"], voided["void_reason"]) == ("voided", "booked on the wrong customer")
    again = await desk.call(
        "POST", f"/v1/benefits/redemptions/{redeemed['id']}/void", "support", json={"reason": "twice"}
    )
    assert again["void_reason"] == "booked on the wrong customer"  # voiding twice is voiding once
    assert benefits(await desk.check(contract_id=contract["id"]))["tech_support_session"]["remaining"] == 2

    newest_first = await desk.call(
        "GET", "/v1/events", "admin", params={"product_id": contract["product_id"]}
    )
    events = list(reversed(newest_first["data"]))
    told = [e for e in events if e["type"].startswith("benefit.")]
    assert [e["type"] for e in told] == ["benefit.redeemed", "benefit.voided"]
    assert told[0]["data"]["kind"] == "tech_support_session"
    assert told[0]["data"]["reference"] == "ZD-9"
    changed = [e for e in events if e["type"] == "coverage.changed"][-1]["data"]
    [entry] = changed["contracts"]
    assert {b["kind"]: b["remaining"] for b in entry["benefits"]}["tech_support_session"] == 2
    history = await desk.call("GET", f"/v1/benefits/redemptions/{redeemed['id']}/history", "support")
    assert [h["action"] for h in history["data"]] == ["redeemed", "voided"]


async def test_twenty_simultaneous_redemptions_of_two_sessions_give_exactly_two(
    desk: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    contract = await desk.sell("test-benefits")
    body = {"kind": "tech_support_session", "contract_id": contract["id"]}
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/benefits/redemptions",
                json={**body, "reference": f"race-{i}"},
                headers=keys.auth("support"),
            )
            for i in range(20)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 18
    assert benefits(await desk.check(contract_id=contract["id"]))["tech_support_session"]["remaining"] == 0


async def test_an_installation_goes_to_a_servicer_and_a_visit_not_made_gives_its_use_back(desk: Shop) -> None:
    fixer = await servicer(desk, "Home Installers", ["phone"], ["US"])
    contract = await desk.sell("test-benefits")
    redeemed = await redeem(desk, reference="inst-1", kind="installation", contract_id=contract["id"])
    order = redeemed["service_order"]
    assert order["status"] == "offered"
    seen = await fixer.call("GET", f"/v1/service-orders/{order['id']}")
    assert (seen["incident_kind"], seen["redemption_id"], seen["claim_id"]) == (
        "installation",
        redeemed["id"],
        None,
    )
    await fixer.call("POST", f"/v1/service-orders/{order['id']}/accept")
    await fixer.report(order["id"], "product_received", 409)  # a visit has no product to receive
    await fixer.report(order["id"], "repair_started")
    await fixer.report(order["id"], "cannot_repair")
    back = await desk.call("GET", f"/v1/benefits/redemptions/{redeemed['id']}", "support")
    assert back["status"] == "voided"
    assert benefits(await desk.check(contract_id=contract["id"]))["installation"]["remaining"] == 1


async def test_a_visit_made_is_booked_as_what_the_plan_paid(desk: Shop) -> None:
    fixer = await servicer(desk, "Home Installers", ["phone"], ["US"])
    contract = await desk.sell("test-benefits")
    redeemed = await redeem(
        desk, reference="mv-1", kind="maintenance_visit", contract_id=contract["id"], servicer_id=fixer.id
    )
    order = redeemed["service_order"]
    assert (order["status"], order["servicer_id"], redeemed["fee"]["amount"]) == ("assigned", fixer.id, 1500)
    await fixer.call("POST", f"/v1/service-orders/{order['id']}/accept")
    await fixer.report(order["id"], "repair_started")
    await fixer.report(order["id"], "repaired", cost={"labour": 4000})
    await fixer.report(order["id"], "closed")
    costs = await desk.call(
        "GET", "/v1/finance/claims-cost", "finance", params={"from": "2020-01-01T00:00:00Z"}
    )
    [line] = [c for c in costs["data"] if c["contract_id"] == contract["id"]]
    assert (line["method"], line["cost"], line["claim_id"]) == (
        "visit",
        {"amount": 4000, "currency": "USD"},
        None,
    )
    assert (await desk.call("GET", f"/v1/benefits/redemptions/{redeemed['id']}", "support"))[
        "status"
    ] == "redeemed"


async def test_a_void_withdraws_a_visit_no_one_took_and_waits_for_one_under_way(desk: Shop) -> None:
    fixer = await servicer(desk, "Home Installers", ["phone"], ["US"])
    contract = await desk.sell("test-benefits")
    waiting = await redeem(desk, reference="inst-w", kind="installation", contract_id=contract["id"])
    voided = await desk.call(
        "POST", f"/v1/benefits/redemptions/{waiting['id']}/void", "support", json={"reason": "customer moved"}
    )
    assert (voided["status"], voided["service_order"]["status"]) == ("voided", "cancelled")
    await fixer.call("GET", f"/v1/service-orders/{waiting['service_order']['id']}", 404)  # no longer offered

    taken = await redeem(desk, reference="inst-t", kind="installation", contract_id=contract["id"])
    await fixer.call("POST", f"/v1/service-orders/{taken['service_order']['id']}/accept")
    refused = await desk.client.post(
        f"/v1/benefits/redemptions/{taken['id']}/void",
        json={"reason": "x"},
        headers=desk.keys.auth("support"),
    )
    assert refused.status_code == 409, refused.text
    assert "accepted" in refused.json()["detail"]


@pytest.mark.parametrize("who", ["checkout", "finance", "publishable"])
async def test_only_support_and_admin_redeem(desk: Shop, who: str) -> None:
    contract = await desk.sell("test-benefits")
    response = await desk.client.post(
        "/v1/benefits/redemptions",
        json={"reference": "r", "kind": "installation", "contract_id": contract["id"]},
        headers=desk.keys.auth(who),
    )
    assert response.status_code == 403, response.text


async def test_a_servicer_named_for_a_service_with_no_visit_is_refused_and_nothing_is_redeemed(
    desk: Shop,
) -> None:
    contract = await desk.sell("test-benefits")
    refused = await redeem(
        desk,
        422,
        reference="x-1",
        kind="tech_support_session",
        contract_id=contract["id"],
        servicer_id="srv_x",
    )
    assert refused["errors"][0]["field"] == "servicer_id"
    assert benefits(await desk.check(contract_id=contract["id"]))["tech_support_session"]["remaining"] == 2
