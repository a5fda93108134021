"""From an approved claim to a repair: fulfilment, repair centres and their keys, service orders
offered and taken (once), estimates that wait, a repair that cannot be made, and what each key
may see and do."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar.routes import HTTPRoute

from api.app import CoverlineApp
from tests.api.shop import Shop
from tests.conftest import Keys


class Servicer:
    def __init__(self, shop: Shop, view: dict[str, Any], key: str) -> None:
        self.shop, self.id, self.key = shop, view["id"], key

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.shop.client.request(method, path, headers=self.auth, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()

    async def report(self, order_id: str, status: str, expect: int = 200, **fields: Any) -> Any:
        return await self.call(
            "POST", f"/v1/service-orders/{order_id}/status", expect, json={"status": status, **fields}
        )


async def servicer(shop: Shop, name: str, categories: list[str], countries: list[str]) -> Servicer:
    view = await shop.call(
        "POST", "/v1/servicers", json={"name": name, "categories": categories, "countries": countries}
    )
    key = await shop.call("POST", f"/v1/servicers/{view['id']}/keys", json={"name": f"{name} desk"})
    assert key["scopes"] == ["servicer"]
    return Servicer(shop, view, key["key"])


async def approved_claim(shop: Shop, amount: int = 15000) -> dict[str, Any]:
    contract = await shop.sell()  # a phone in the US; a screen claim pays it less USD 29 deductible
    claim = await shop.claim(
        contract_id=contract["id"],
        amount={"amount": amount, "currency": "USD"},
        description="Dropped on tiles; the screen is cracked across",
    )
    claim["serial"] = contract["serial"]
    assert claim["status"] == "approved"
    return claim


async def fulfil(shop: Shop, claim_id: str, expect: int = 200, **body: Any) -> Any:
    response = await shop.client.post(
        f"/v1/claims/{claim_id}/fulfil", json=body, headers=shop.keys.auth("support")
    )
    assert response.status_code == expect, response.text
    return response.json()


async def test_a_repair_is_offered_taken_by_the_first_servicer_repaired_and_fulfils_the_claim(
    shop: Shop,
) -> None:
    first = await servicer(shop, "Quezon Fix", ["phone"], ["US"])
    second = await servicer(shop, "Mobile Medics", ["phone"], [])
    tv_only = await servicer(shop, "Screen Kings", ["tv"], ["US"])
    claim = await approved_claim(shop)
    fulfilling = await fulfil(shop, claim["id"], method="repair")
    assert (fulfilling["status"], fulfilling["fulfilment"]) == ("approved", "repair")
    order_id = fulfilling["fulfilment_details"]["service_order_id"]

    assert [o["id"] for o in (await second.call("GET", "/v1/service-orders"))["data"]] == [order_id]
    assert (await tv_only.call("GET", "/v1/service-orders"))["data"] == []  # not its category
    await tv_only.call("GET", f"/v1/service-orders/{order_id}", 404)
    taken = await first.call("POST", f"/v1/service-orders/{order_id}/accept")
    assert (taken["status"], taken["servicer_id"]) == ("accepted", first.id)
    assert (taken["serial"], taken["incident_kind"], taken["problem"]) == (
        claim["serial"],
        "screen",
        "Dropped on tiles; the screen is cracked across",
    )  # the job, as the repair centre needs it
    # The help desk's check shows the claim under way and who has the repair.
    check = await shop.check(contract_id=claim["contract_id"])
    [open_claim] = check["products"][0]["open_claims"]
    assert (open_claim["claim_id"], open_claim["status"], open_claim["service_order"]) == (
        claim["id"],
        "approved",
        {"id": order_id, "status": "accepted", "servicer_id": first.id},
    )
    await second.call("GET", f"/v1/service-orders/{order_id}", 404)  # gone for the others
    await second.call("POST", f"/v1/service-orders/{order_id}/accept", 404)

    await first.report(order_id, "product_received")
    # Past the currency's ceiling (USD 100,000), as a claim's amount: refused, nothing moved.
    await first.report(order_id, "diagnosed", expect=422, estimate={"parts": 10**12, "labour": 1})
    diagnosed = await first.report(order_id, "diagnosed", estimate={"parts": 9000, "labour": 2000})
    assert diagnosed["estimate_waits"] is False  # USD 110 within the USD 121 the claim pays
    await first.report(order_id, "repair_started")
    await first.report(order_id, "repaired", expect=422)  # a repair reports its cost
    huge = {"parts": 10**12, "labour": 10**12, "shipping": 10**12}
    assert (await first.report(order_id, "repaired", expect=422, cost=huge))["errors"][0]["field"] == "cost"
    # Above what the claim pays (USD 121) with no approval asked: refused, however it is split.
    over = await first.report(
        order_id, "repaired", expect=409, cost={"parts": 8800, "labour": 2000, "shipping": 1400}
    )
    assert "12200" in over["detail"] and "12100" in over["detail"]
    await first.report(order_id, "repaired", cost={"parts": 8800, "labour": 2000, "shipping": 900})
    await first.report(order_id, "closed", expect=409)  # not shipped yet
    await first.report(order_id, "shipped")
    closed = await first.report(order_id, "closed", note="screen replaced, tested")
    assert closed["cost"] == {"parts": 8800, "labour": 2000, "shipping": 900}
    after = await shop.call("GET", f"/v1/claims/{claim['id']}", "support")
    assert after["status"] == "fulfilled" and after["fulfilled_at"]
    assert (await shop.check(contract_id=claim["contract_id"]))["products"][0]["open_claims"] == []
    costs = await shop.call("GET", "/v1/finance/claims-cost", "finance")
    assert [(c["claim_id"], c["servicer_id"], c["method"], c["cost"]) for c in costs["data"]] == [
        (claim["id"], first.id, "repair", {"amount": 11700, "currency": "USD"})  # booked once, when repaired
    ]
    events = await shop.call("GET", "/v1/events", "admin", params={"contract_id": claim["contract_id"]})
    told = [
        e["type"]
        for e in reversed(events["data"])
        if e["type"].startswith(("service_order.", "claim.fulfilled"))
    ]
    assert told == [
        "service_order.offered",
        "service_order.accepted",
        "service_order.product_received",
        "service_order.diagnosed",
        "service_order.repair_started",
        "service_order.repaired",
        "service_order.shipped",
        "service_order.closed",
        "claim.fulfilled",
    ]


async def test_an_estimate_above_what_the_claim_pays_waits_for_approval(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    repairer = await servicer(shop, "Fix It", ["phone"], ["US"])
    claim = await approved_claim(shop)
    order_id = (await fulfil(shop, claim["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    await repairer.call("POST", f"/v1/service-orders/{order_id}/accept")
    await repairer.report(order_id, "product_received")
    diagnosed = await repairer.report(order_id, "diagnosed", estimate={"parts": 11000, "labour": 3000})
    assert diagnosed["estimate_waits"] is True  # USD 140 against USD 121
    refused = await repairer.report(order_id, "repair_started", expect=409)
    assert "waits for approval" in refused["detail"]
    await repairer.call("POST", f"/v1/service-orders/{order_id}/approve-estimate", 403)  # not its to approve
    approve = await client.post(
        f"/v1/service-orders/{order_id}/approve-estimate",
        headers=keys.auth("support") | {"Coverline-Agent": "rita"},
    )
    assert approve.status_code == 200 and approve.json()["estimate_approved_by"] == "rita"
    await repairer.report(order_id, "repair_started")
    # The approved estimate (USD 140) is what the repair may cost now, and no more.
    await repairer.report(
        order_id, "repaired", expect=409, cost={"parts": 11000, "labour": 3000, "shipping": 1}
    )
    await repairer.report(order_id, "repaired", cost={"parts": 11000, "labour": 2500, "shipping": 500})


async def test_a_voided_claims_order_is_withdrawn_until_a_servicer_takes_it(shop: Shop) -> None:
    repairer = await servicer(shop, "Void Lab", ["phone"], ["US"])
    offered = await approved_claim(shop)
    order_id = (await fulfil(shop, offered["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    await shop.call("POST", f"/v1/claims/{offered['id']}/void", "support", json={"reason": "filed twice"})
    assert (await shop.call("GET", f"/v1/service-orders/{order_id}", "admin"))["status"] == "cancelled"
    await repairer.call("POST", f"/v1/service-orders/{order_id}/accept", 404)  # no longer offered

    taken = await approved_claim(shop)
    order_id = (await fulfil(shop, taken["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    await repairer.call("POST", f"/v1/service-orders/{order_id}/accept")
    await repairer.report(order_id, "product_received")
    refused = await shop.client.post(
        f"/v1/claims/{taken['id']}/void", json={"reason": "dup"}, headers=shop.keys.auth("support")
    )
    assert refused.status_code == 409 and order_id in refused.json()["detail"]
    assert (await shop.call("GET", f"/v1/claims/{taken['id']}", "support"))["status"] == "approved"
    await repairer.report(order_id, "cannot_repair")  # its servicer ends it; then the void is free
    await shop.call("POST", f"/v1/claims/{taken['id']}/void", "support", json={"reason": "dup"})


async def test_a_repair_that_cannot_be_made_is_fulfilled_by_a_replacement(shop: Shop) -> None:
    repairer = await servicer(shop, "Fix It", ["phone"], [])
    claim = await approved_claim(shop)
    order_id = (await fulfil(shop, claim["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    await repairer.call("POST", f"/v1/service-orders/{order_id}/accept")
    await repairer.report(order_id, "cannot_repair", note="board damaged beyond repair")
    await repairer.report(order_id, "product_received", expect=409)  # ended
    waiting = await shop.call("GET", f"/v1/claims/{claim['id']}", "support")
    assert (waiting["status"], waiting["fulfilment"]) == ("approved", "replacement_due")
    assert (await fulfil(shop, claim["id"], 422, method="repair"))["errors"][0]["field"] == "method"
    too_much = {"amount": 9 * 10**18, "currency": "USD"}
    refused = await fulfil(shop, claim["id"], 422, method="replace", sku="SM-A556", cost=too_much)
    assert refused["errors"][0]["field"] == "cost.amount"
    replaced = await fulfil(
        shop, claim["id"], method="replace", sku="SM-A556", cost={"amount": 31000, "currency": "USD"}
    )
    assert replaced["status"] == "fulfilled"
    assert replaced["fulfilment_details"] == {"sku": "SM-A556", "cost": {"amount": 31000, "currency": "USD"}}
    costs = await shop.call("GET", "/v1/finance/claims-cost", "finance")
    assert [(c["method"], c["cost"]["amount"]) for c in costs["data"]] == [("replace", 31000)]


async def test_reimbursements_and_gift_cards_fulfil_at_once_and_only_once(shop: Shop) -> None:
    owed = await fulfil(shop, (await approved_claim(shop))["id"], method="reimburse")
    assert (owed["status"], owed["fulfilment_details"]) == (
        "fulfilled",
        {"owed": {"amount": 12100, "currency": "USD"}},
    )
    card = await fulfil(
        shop, (await approved_claim(shop, 10000))["id"], method="gift_card", code="GC-7731-XK"
    )
    assert card["fulfilment_details"] == {"code": "GC-7731-XK", "value": {"amount": 7100, "currency": "USD"}}
    again = await fulfil(shop, card["id"], 409, method="reimburse")
    assert again["status"] == 409
    assert (await fulfil(shop, (await approved_claim(shop))["id"], 422, method="gift_card"))["errors"][0][
        "field"
    ] == "code"


async def test_an_admin_assigns_a_repair_to_one_servicer(shop: Shop) -> None:
    chosen = await servicer(shop, "Chosen", ["phone"], ["US"])
    other = await servicer(shop, "Other", ["phone"], ["US"])
    elsewhere = await servicer(shop, "Elsewhere", ["phone"], ["SE"])
    claim = await approved_claim(shop)
    refused = await fulfil(shop, claim["id"], 422, method="repair", servicer_id=elsewhere.id)
    assert refused["errors"][0]["field"] == "servicer_id"  # it does not serve the US
    order = (await fulfil(shop, claim["id"], method="repair", servicer_id=chosen.id))["fulfilment_details"]
    order_id = order["service_order_id"]
    await other.call("GET", f"/v1/service-orders/{order_id}", 404)
    assert (await chosen.call("GET", f"/v1/service-orders/{order_id}"))["status"] == "assigned"
    await chosen.call("POST", f"/v1/service-orders/{order_id}/accept")


async def test_two_servicers_accepting_at_once_one_takes_the_order(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    racers = [await servicer(shop, f"Racer {i}", ["phone"], ["US"]) for i in range(2)]
    claim = await approved_claim(shop)
    order_id = (await fulfil(shop, claim["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    results = await asyncio.gather(
        *(client.post(f"/v1/service-orders/{order_id}/accept", headers=r.auth) for r in racers)
    )
    assert sorted(r.status_code for r in results) == [200, 404]
    winner = next(r for r in results if r.status_code == 200).json()["servicer_id"]
    order = await shop.call("GET", f"/v1/service-orders/{order_id}", "admin")
    assert order["servicer_id"] == winner


def _operations(app: CoverlineApp) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format.startswith("/v1/"):
            for handler in route.route_handlers:
                found += [(m, route.path_format) for m in sorted(handler.http_methods - {"OPTIONS", "HEAD"})]
    return found


async def test_a_servicer_key_reaches_only_its_own_orders(
    shop: Shop, client: httpx.AsyncClient, app: CoverlineApp
) -> None:
    """Every operation of the API, called with another servicer's key on this servicer's order (or
    with any id): the service-order operations answer 404 as if the order did not exist, and every
    other operation is refused (403), but the published catalog and what needs no key at all."""
    owner = await servicer(shop, "Owner", ["phone"], ["US"])
    stranger = await servicer(shop, "Stranger", ["phone"], ["US"])
    claim = await approved_claim(shop)
    order_id = (await fulfil(shop, claim["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    await owner.call("POST", f"/v1/service-orders/{order_id}/accept")
    ids = {"order_id": order_id, "claim_id": claim["id"], "contract_id": claim["contract_id"]}
    seen = 0
    for method, path in _operations(app):
        url = path
        for name, value in ids.items():
            url = url.replace("{" + name + "}", value)
        url = url.replace("{", "").replace("}", "")  # any other id: a made-up one
        body = {"status": "product_received"} if path.endswith("/status") else {}
        upload = path.endswith("/evidence") or path.startswith("/v1/evidence-uploads")
        if upload and method == "POST":  # evidence comes as multipart
            files = {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "image/png")}
            response = await client.post(url, files=files, headers=stranger.auth)
        else:
            response = await client.request(
                method, url, headers=stranger.auth, json=None if method == "GET" else body
            )
        if path.startswith("/v1/service-orders/{order_id}") and path.endswith(
            ("accept", "status", "order_id}")
        ):
            assert response.status_code == 404, (method, path, response.text)
        elif path.startswith(("/v1/unsubscribe", "/v1/stripe/webhooks", "/v1/evidence-uploads")):
            assert response.status_code in (400, 404, 422), (method, path)  # open: signed links
        elif path.startswith("/v1/plans"):
            assert response.status_code in (200, 404), (method, path)  # the published catalog
        elif path == "/v1/service-orders":
            assert order_id not in response.text
        else:
            assert response.status_code == 403, (method, path, response.status_code)
        seen += 1
    assert seen == len(_operations(app)) > 50
    assert (await owner.call("GET", f"/v1/service-orders/{order_id}"))["servicer_id"] == owner.id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "categories": []}, "categories"),
        ({"name": "x", "categories": ["phone"], "countries": ["XX"]}, "countries"),
        ({"name": " ", "categories": ["phone"]}, "name"),
    ],
)
async def test_servicer_input_is_checked(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/servicers", json=body, headers=keys.auth("admin"))
    assert response.status_code == 422 and field in response.text, response.text
