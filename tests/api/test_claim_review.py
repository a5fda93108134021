"""Claims that wait for a reviewer: the plan's review rules, the queue, the reviewer's moves with
reason codes and named agents, four eyes, the filing window, and approvals against the limits
left (on PostgreSQL, concurrently)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx

from tests.api.shop import Shop, customer_today
from tests.conftest import Keys

PLAN = "test-reviewed"  # review over USD 500, theft and loss, repeats within 90 days; 30-day window


async def review(
    shop: Shop, claim_id: str, action: str, reason_code: str, agent: str | None = "rita", expect: int = 200
) -> dict[str, Any]:
    headers = shop.keys.auth("support") | ({"Coverline-Agent": agent} if agent else {})
    response = await shop.client.post(
        f"/v1/claims/{claim_id}/review", json={"action": action, "reason_code": reason_code}, headers=headers
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def remaining(shop: Shop, contract_id: str) -> Any:
    answer = await shop.check(contract_id=contract_id, incident="screen")
    return answer["products"][0]["contracts"][0]["remaining_aggregate"], answer


async def test_a_theft_claim_waits_in_the_queue_asks_for_a_photo_and_is_approved_by_another_agent(
    shop: Shop,
) -> None:
    contract = await shop.sell(PLAN)
    claim = await shop.claim(
        agent="hugo",
        contract_id=contract["id"],
        incident_kind="theft_loss",
        amount={"amount": 40000, "currency": "USD"},
    )
    assert (claim["status"], claim["review_reasons"], claim["filed_by"]) == (
        "in_review",
        ["theft_loss"],
        "hugo",
    )
    assert claim["covered_amount"] == {"amount": 30100, "currency": "USD"}  # what it would pay now
    queue = await shop.call("GET", "/v1/claims", "support", params={"status": "in_review"})
    assert claim["id"] in [c["id"] for c in queue["data"]]
    waiting = next(c for c in queue["data"] if c["id"] == claim["id"])
    assert waiting["seconds_in_review"] >= 0 and waiting["review_since"] == claim["created_at"]

    asked = await review(shop, claim["id"], "request_info", "police_report")
    assert asked["status"] == "info_requested"
    check = await shop.check(contract_id=contract["id"])
    assert [
        (c["claim_id"], c["status"], c["service_order"]) for c in check["products"][0]["open_claims"]
    ] == [(claim["id"], "info_requested", None)]
    back = await review(shop, claim["id"], "resume", "information_received")
    assert back["status"] == "in_review"
    # Four eyes: the filer cannot approve, however the name is typed (case, width, spacing).
    for filer in ("hugo", "HUGO", "Hugo\u00a0", "ｈｕｇｏ", "hu go", "HU\u200bGO"):
        refused = await shop.client.post(  # the header's bytes in UTF-8, as clients send them
            f"/v1/claims/{claim['id']}/review",
            json={"action": "approve", "reason_code": "verified"},
            headers=shop.keys.auth("support") | {"Coverline-Agent": filer.encode()},
        )
        assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "Coverline-Agent"
    approved = await review(shop, claim["id"], "approve", "evidence_received", agent="rita")
    assert (approved["status"], approved["reason"], approved["decided_by"]) == (
        "approved",
        "evidence_received",
        "rita",
    )
    assert approved["covered_amount"] == {"amount": 30100, "currency": "USD"}
    assert approved["seconds_in_review"] is not None

    events = await shop.call("GET", "/v1/events", "admin", params={"contract_id": contract["id"]})
    told = [e["type"] for e in reversed(events["data"]) if e["type"].startswith("claim.")]
    assert told == [
        "claim.filed",
        "claim.in_review",
        "claim.info_requested",
        "claim.in_review",
        "claim.approved",
    ]
    history = await shop.call("GET", f"/v1/claims/{claim['id']}/history", "support")
    moves = [
        (h["action"], h["changes"].get("agent"), h["changes"].get("reason_code")) for h in history["data"]
    ]
    assert moves == [
        ("in_review", "hugo", None),
        ("request_info", "rita", "police_report"),
        ("resume", "rita", "information_received"),
        ("approve", "rita", "evidence_received"),
    ]
    on_contract = await shop.call("GET", f"/v1/contracts/{contract['id']}/history", "support")
    assert [h["action"] for h in on_contract["data"] if h["action"].startswith("claim_")] == [
        "claim_in_review",
        "claim_info_requested",
        "claim_in_review",
        "claim_approved",
    ]


async def test_the_rules_send_large_claims_and_repeats_to_review_and_approve_the_rest(shop: Shop) -> None:
    contract = await shop.sell(PLAN)
    small = await shop.claim(contract_id=contract["id"], amount={"amount": 12000, "currency": "USD"})
    assert (small["status"], small["review_reasons"]) == ("approved", [])
    repeat = await shop.claim(contract_id=contract["id"], amount={"amount": 12000, "currency": "USD"})
    assert (repeat["status"], repeat["review_reasons"]) == ("in_review", ["repeat_repair"])
    large = await shop.claim(contract_id=contract["id"], amount={"amount": 50001, "currency": "USD"})
    assert large["review_reasons"] == ["amount_over_threshold", "repeat_repair"]
    denied = await review(shop, large["id"], "deny", "pre_existing_damage")
    assert (denied["status"], denied["covered_amount"]["amount"]) == ("denied", 0)
    # Another customer's first claim of USD 500 exactly is not over the threshold.
    other = await shop.sell(PLAN)
    at_threshold = await shop.claim(contract_id=other["id"], amount={"amount": 50000, "currency": "USD"})
    assert at_threshold["status"] == "approved"


async def test_a_frequent_claimant_is_flagged_for_the_reviewer_never_denied(shop: Shop) -> None:
    contract = await shop.sell(PLAN)
    filed = [
        await shop.claim(contract_id=contract["id"], amount={"amount": 3000, "currency": "USD"})
        for _ in range(5)
    ]
    assert [c["flags"] for c in filed] == [[], [], [], [], ["frequent_claims"]]
    assert filed[4]["status"] == "in_review" and "fraud_flag" in filed[4]["review_reasons"]


async def test_a_claim_after_the_filing_window_is_denied(shop: Shop) -> None:
    contract = await shop.sell(PLAN)
    late = (customer_today() - dt.timedelta(days=31)).isoformat()
    claim = await shop.claim(contract_id=contract["id"], incident_date=late)
    assert (claim["status"], claim["reason"], claim["covered_amount"]["amount"]) == (
        "denied",
        "filing_window_passed",
        0,
    )


async def test_review_moves_are_checked(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    contract = await shop.sell(PLAN)
    claim = await shop.claim(contract_id=contract["id"], incident_kind="theft_loss")
    nameless = await client.post(
        f"/v1/claims/{claim['id']}/review",
        json={"action": "approve", "reason_code": "verified"},
        headers=keys.auth("support"),
    )
    assert nameless.status_code == 422 and "coverline-agent" in nameless.text.lower()  # a named agent
    wrong_code = await review(shop, claim["id"], "deny", "verified", expect=422)
    assert wrong_code["errors"][0]["field"] == "reason_code"
    assert (await review(shop, claim["id"], "resume", "information_received", expect=409))["status"] == 409
    await review(shop, claim["id"], "approve", "verified")
    again = await review(shop, claim["id"], "approve", "verified", expect=409)
    assert "approved" in again["detail"]
    unknown = await review(shop, "clm_" + "0" * 20, "approve", "verified", expect=404)
    assert unknown["status"] == 404
    voided = await shop.call("POST", f"/v1/claims/{claim['id']}/void", "support")
    assert voided["status"] == "voided"
    for action, code in (("approve", "verified"), ("deny", "duplicate")):
        await review(shop, claim["id"], action, code, expect=409)


async def test_two_reviewers_approving_against_the_last_claim_of_the_limit_cannot_both_win(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    """The plan allows two claims: one approved, two waiting in review, each payable when filed.
    Approved at once by two reviewers, each decides again under the contract's lock: one wins."""
    contract = await shop.sell(PLAN)
    await shop.claim(contract_id=contract["id"], amount={"amount": 5000, "currency": "USD"})
    waiting = [await shop.claim(contract_id=contract["id"], incident_kind="theft_loss") for _ in range(2)]
    assert {c["status"] for c in waiting} == {"in_review"}
    results = await asyncio.gather(
        *(
            client.post(
                f"/v1/claims/{c['id']}/review",
                json={"action": "approve", "reason_code": "verified"},
                headers=keys.auth("support") | {"Coverline-Agent": f"reviewer-{i}"},
            )
            for i, c in enumerate(waiting)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    lost = next(r for r in results if r.status_code == 409).json()
    assert "limit_reached" in lost["detail"]
    answer = await shop.check(contract_id=contract["id"], incident="screen")
    assert answer["products"][0]["contracts"][0]["remaining_claims"] == 0


async def test_the_queue_is_oldest_first_in_pages(shop: Shop) -> None:
    contract = await shop.sell(PLAN)
    filed = [
        (await shop.claim(contract_id=contract["id"], incident_kind="theft_loss"))["id"] for _ in range(3)
    ]
    seen: list[str] = []
    params: dict[str, Any] = {"status": "in_review", "contract_id": contract["id"], "limit": 2}
    while True:
        page = await shop.call("GET", "/v1/claims", "support", params=params)
        seen += [c["id"] for c in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == filed


async def test_a_device_that_is_not_the_contracts_is_flagged_for_the_reviewer(shop: Shop) -> None:
    """At intake the desk reads the device: a serial registered to another customer, or an IMEI
    whose check digit is wrong, sends the claim to review with the flag; neither denies it."""
    contract = await shop.sell(PLAN)
    stranger = await shop.sell(PLAN)
    shown = await shop.claim(contract_id=contract["id"], serial=stranger["serial"])
    assert (shown["status"], shown["flags"]) == ("in_review", ["serial_of_another_customer"])
    own = await shop.sell(PLAN)
    fine = await shop.claim(contract_id=own["id"], serial=own["serial"], device_imei="49-015420-323751-8")
    assert (fine["status"], fine["flags"]) == ("approved", [])
    other = await shop.sell(PLAN)
    forged = await shop.claim(contract_id=other["id"], device_imei="490154203237519")
    assert (forged["status"], forged["flags"], forged["review_reasons"]) == (
        "in_review",
        ["imei_fails_luhn"],
        ["fraud_flag"],
    )
