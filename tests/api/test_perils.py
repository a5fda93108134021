"""Coverage per peril: a plan whose breakdown cover begins when the manufacturer's warranty ends,
while screens are covered from the sale; and the check telling, per coverage, who pays."""

from __future__ import annotations

import datetime as dt

from api.app import CoverlineApp
from entitlements.catalog import Coverage, CoverageKind, CoverageStart
from entitlements.store.plans import PlanRepository
from tests.api import shop as shops
from tests.api.shop import Shop

PERILS = shops.plan_for_tests(
    code="test-perils",
    waiting_period_days=0,
    coverages=[
        Coverage(CoverageKind.SCREEN, {"USD": 2900}),
        Coverage(CoverageKind.MECHANICAL_BREAKDOWN, starts=CoverageStart.AFTER_MANUFACTURER_WARRANTY),
        Coverage(CoverageKind.POWER_SURGE, starts=CoverageStart.AFTER_MANUFACTURER_WARRANTY),
    ],
)


async def test_breakdowns_are_the_manufacturers_until_its_warranty_ends_then_the_plans(
    shop: Shop, app: CoverlineApp
) -> None:
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([PERILS])
    bought = dt.date.today() - dt.timedelta(days=100)
    customer = await shop.customer()
    product = await shop.product(
        customer["id"], purchase_date=bought, warranty_months=12, warranty_labour_months=6
    )
    assert product["warranty_labour_months"] == 6
    contract = await shop.open_contract(customer, product, "test-perils")
    await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")

    now = await shop.check(contract_id=contract["id"], incident="mechanical_breakdown", locale="sv")
    [item] = now["products"][0]["contracts"]
    warranty_end = dt.datetime.fromisoformat(now["products"][0]["manufacturer_warranty"]["parts_until"])
    labour_end = dt.datetime.fromisoformat(now["products"][0]["manufacturer_warranty"]["labour_until"])
    assert warranty_end.date() == (bought.replace(year=bought.year + 1)) and labour_end < warranty_end
    assert (item["covered"], item["reason"]) == (False, "manufacturer_warranty")
    assert dt.datetime.fromisoformat(item["warranty_until"]) == warranty_end
    assert {p["kind"]: p["paid_by"] for p in item["paid_by"]} == {
        "screen": "plan",
        "mechanical_breakdown": "manufacturer",
        "power_surge": "none",
    }
    assert "tillverkarens garanti täcker" in now["summary"]  # who pays, in the caller's language
    # A surge is no defect: the warranty does not repair it, and the summary does not say it does.
    surge = await shop.check(contract_id=contract["id"], incident="power_surge", locale="sv")
    [item] = surge["products"][0]["contracts"]
    assert (item["covered"], item["reason"]) == (False, "manufacturer_warranty")
    assert "tillverkarens garanti täcker" not in surge["summary"]
    assert "skyddet för överspänningsskada börjar gälla" in surge["summary"]
    screen = await shop.check(contract_id=contract["id"], incident="screen")
    assert screen["covered"] is True

    later = (warranty_end + dt.timedelta(days=2)).isoformat()
    after = await shop.check(contract_id=contract["id"], incident="mechanical_breakdown", at=later)
    [item] = after["products"][0]["contracts"]
    assert item["covered"] is True and item["warranty_until"] is None
    assert {p["kind"]: p["paid_by"] for p in item["paid_by"]} == {
        "screen": "plan",
        "mechanical_breakdown": "plan",
        "power_surge": "plan",
    }

    denied = await shop.claim(contract_id=contract["id"], incident_kind="mechanical_breakdown")
    assert (denied["status"], denied["reason"]) == ("denied", "manufacturer_warranty")
    assert (await shop.claim(contract_id=contract["id"], incident_kind="screen"))["status"] == "approved"


async def test_a_coverage_pays_at_most_its_cap_for_one_claim(shop: Shop, app: CoverlineApp) -> None:
    capped = shops.plan_for_tests(
        code="test-capped",
        waiting_period_days=0,
        coverages=[Coverage(CoverageKind.SCREEN, {"USD": 2900}, claim_max={"USD": 10000})],
    )
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([capped])
    contract = await shop.sell("test-capped")
    answer = await shop.check(contract_id=contract["id"], incident="screen")
    assert answer["products"][0]["contracts"][0]["claim_max"] == {"amount": 10000, "currency": "USD"}
    claim = await shop.claim(contract_id=contract["id"], amount={"amount": 30000, "currency": "USD"})
    assert (claim["status"], claim["covered_amount"]["amount"], claim["deductible"]["amount"]) == (
        "approved",
        10000,
        2900,
    )
    small = await shop.claim(contract_id=contract["id"], amount={"amount": 8000, "currency": "USD"})
    assert small["covered_amount"]["amount"] == 5100  # under the cap: the claim less the deductible
