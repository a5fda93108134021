"""Proactive outreach: a renewal's reminder, a fixed term's end and a lead for a product bought
without a plan, each told once, however many sweeps run and wherever."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from api.app import CoverlineApp
from entitlements.catalog import Billing, decode_catalog
from entitlements.outreach import Report, sweep
from tests.api.shop import Shop
from tests.conftest import DEMO_CATALOG, TEST_KEYRING

DAY = dt.timedelta(days=1)


async def run_sweep(app: CoverlineApp, now: dt.datetime, **overrides: Any) -> Report:
    options: dict[str, Any] = {
        "keyring": TEST_KEYRING,
        "lead_after": dt.timedelta(hours=24),
        "lead_url": "https://shop.example/protect?lead={token}",
    }
    options.update(overrides)
    return await sweep(app.state.db.unit_of_work, now, **options)


async def events(shop: Shop, kind: str, **params: str) -> list[dict[str, Any]]:
    found = await shop.call("GET", "/v1/events", "admin", params={"type": kind, **params})
    data: list[dict[str, Any]] = found["data"]
    return data


def paid_until(contract: dict[str, Any]) -> dt.datetime:
    history = contract["coverage_periods"]
    return max(dt.datetime.fromisoformat(p["end"]) for p in history)


async def test_a_renewal_is_announced_once_its_notice_days_ahead(shop: Shop, app: CoverlineApp) -> None:
    contract = await shop.sell("test-monthly")
    renews = paid_until(await shop.call("GET", f"/v1/contracts/{contract['id']}", "support"))
    assert (await run_sweep(app, renews - 8 * DAY)).renewal_upcoming == 0  # a monthly plan: 7 days
    # Two workers' sweeps at the same moment, then one after a restart: one notice.
    reports = await asyncio.gather(run_sweep(app, renews - 6 * DAY), run_sweep(app, renews - 6 * DAY))
    assert sorted(r.renewal_upcoming for r in reports) == [0, 1]
    assert (await run_sweep(app, renews - 2 * DAY)).renewal_upcoming == 0
    [notice] = await events(shop, "renewal.upcoming", contract_id=contract["id"])
    assert dt.datetime.fromisoformat(notice["data"]["renews_at"]) == renews
    assert notice["data"]["billing"] == "monthly"
    # Paid for the next month: the next renewal is announced in its turn.
    await shop.lifecycle(contract["id"], "payment", f"renewal-{contract['id']}")
    assert (await run_sweep(app, renews + 25 * DAY)).renewal_upcoming == 1


async def test_a_fixed_term_ending_is_told_with_offers_while_the_product_is_eligible(
    shop: Shop, app: CoverlineApp
) -> None:
    contract = await shop.sell("test-screen-guard")  # 24 months, upfront
    ends = paid_until(await shop.call("GET", f"/v1/contracts/{contract['id']}", "support"))
    assert (await run_sweep(app, ends - 31 * DAY)).coverage_ending == 0
    assert (await run_sweep(app, ends - 29 * DAY)).coverage_ending == 1
    assert (await run_sweep(app, ends - 28 * DAY)).coverage_ending == 0
    [notice] = await events(shop, "coverage.ending", contract_id=contract["id"])
    assert dt.datetime.fromisoformat(notice["data"]["ends_at"]) == ends
    # Two years after its purchase the phone is past every plan's purchase window: no offer.
    assert notice["data"]["offers"] == []
    assert (await run_sweep(app, ends - 29 * DAY)).renewal_upcoming == 0  # it does not renew


async def test_a_product_bought_without_a_plan_gets_one_lead_that_one_sale_consumes(
    shop: Shop, app: CoverlineApp
) -> None:
    customer = await shop.customer()
    product = await shop.product(customer["id"])
    registered = dt.datetime.now(dt.UTC)
    assert (await run_sweep(app, registered + dt.timedelta(hours=2))).offer_lead == 0  # too soon
    assert (await run_sweep(app, registered + dt.timedelta(hours=25))).offer_lead == 1
    assert (await run_sweep(app, registered + dt.timedelta(hours=26))).offer_lead == 0
    [lead] = await events(shop, "offer.lead", product_id=product["id"])
    token = lead["data"]["lead_token"]
    assert lead["data"]["url"] == f"https://shop.example/protect?lead={token}"
    assert "test-screen-guard" in lead["data"]["plans"]

    offered = await shop.client.post(
        "/v1/offers", json={"lead_token": token, "locale": "sv"}, headers=shop.keys.auth("publishable")
    )
    assert offered.status_code == 200, offered.text
    offers = {o["plan"]["code"]: o["offer_token"] for o in offered.json()["offers"]}
    sold = await shop.call(
        "POST",
        "/v1/contracts",
        "checkout",
        json={
            "offer_token": offers["test-screen-guard"],
            "customer_id": customer["id"],
            "product_id": product["id"],
        },
    )
    assert sold["status"] == "pending_payment"
    again = await shop.client.post(
        "/v1/contracts",
        json={
            "offer_token": offers["test-monthly"],
            "customer_id": customer["id"],
            "product_id": product["id"],
        },
        headers=shop.keys.auth("checkout"),
    )
    assert again.status_code == 409, again.text  # the lead was consumed by the first sale
    used = await shop.client.post(
        "/v1/offers", json={"lead_token": token}, headers=shop.keys.auth("publishable")
    )
    assert used.status_code == 409
    unknown = await shop.client.post(
        "/v1/offers", json={"lead_token": "lead_nothing"}, headers=shop.keys.auth("publishable")
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "lead_token"


async def test_an_offer_request_names_the_product_or_a_lead_not_both(shop: Shop) -> None:
    neither = await shop.client.post("/v1/offers", json={}, headers=shop.keys.auth("publishable"))
    assert neither.status_code == 422


def test_a_yearly_renewal_is_announced_15_to_45_days_ahead() -> None:
    raw = DEMO_CATALOG.read_text(encoding="utf-8")
    plans, problems = decode_catalog(raw.encode())
    assert not problems
    annual = next(p for p in plans if p.billing is Billing.ANNUAL and p.auto_renew)
    assert annual.renewal_notice() == 30
    marker = f'code = "{annual.code}"'
    too_late = raw.replace(marker, marker + "\nrenewal_notice_days = 10", 1)
    _, problems = decode_catalog(too_late.encode())
    assert [p.path for p in problems] == [p.path for p in problems if p.path.endswith("renewal_notice_days")]
    assert problems and "15 to 45" in problems[0].message


@pytest.mark.parametrize("days", [15, 45])
def test_the_window_includes_its_ends(days: int) -> None:
    raw = DEMO_CATALOG.read_text(encoding="utf-8")
    plans, _ = decode_catalog(raw.encode())
    annual = next(p for p in plans if p.billing is Billing.ANNUAL and p.auto_renew)
    marker = f'code = "{annual.code}"'
    _, problems = decode_catalog(raw.replace(marker, marker + f"\nrenewal_notice_days = {days}", 1).encode())
    assert problems == []


def test_coverline_outreach_sweeps_once_from_the_command_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from api.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    done = CliRunner().invoke(main, ["outreach", "--now", "2026-11-27T12:00:00Z"])
    assert done.exit_code == 0, done.output
    assert (
        done.output.strip()
        == "renewal.upcoming 0, coverage.ending 0, offer.lead 0, contract.getting_started 0"
    )
    refused = CliRunner().invoke(main, ["outreach", "--now", "someday"])
    assert refused.exit_code == 2 and "--now" in refused.output
