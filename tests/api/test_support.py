"""The support a plan grants, in every check: its level and channels while in cover, the
targets per channel, and, given `opened_at`, the instants they fall due in the schedule's
business hours; in the summary too. Named schedules in a catalog are copied into the plan."""

from __future__ import annotations

import datetime as dt

import pytest

from api.app import CoverlineApp
from entitlements.catalog import (
    ExchangePolicy,
    Hours,
    Schedule,
    Support,
    SupportChannel,
    SupportLevel,
    SupportTarget,
    Weekday,
    decode_catalog,
)
from entitlements.store.plans import PlanRepository
from entitlements.support.rules import due_by
from entitlements.zones import zone
from tests.api.shop import Shop, plan_for_tests

W = Weekday
OFFICE = Schedule(
    "America/Chicago",
    (Hours((W.MON, W.TUE, W.WED, W.THU, W.FRI), "09:00", "17:00"),),
    (dt.date(2026, 12, 25),),
)
PLAN = plan_for_tests(
    code="test-priority",
    waiting_period_days=0,
    support=Support(
        SupportLevel.PRIORITY,
        [SupportChannel.PHONE, SupportChannel.CHAT],
        [
            SupportTarget(SupportChannel.PHONE, 15, 240),
            SupportTarget(SupportChannel.CHAT, 5, 480),
        ],
        OFFICE,
        ExchangePolicy.ADVANCE_REPLACEMENT,
    ),
)


@pytest.fixture
async def desk(shop: Shop, app: CoverlineApp) -> Shop:
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([PLAN])
    return shop


async def test_a_check_tells_the_level_the_channels_and_when_a_case_opened_then_is_due(desk: Shop) -> None:
    contract = await desk.sell("test-priority")
    christmas_eve = dt.datetime(2026, 12, 24, 16, 30, tzinfo=zone("America/Chicago"))
    answer = await desk.check(serial=contract["serial"], opened_at=christmas_eve.isoformat())
    support = answer["products"][0]["contracts"][0]["support"]
    assert (support["level"], support["channels"], support["exchange"], support["time_zone"]) == (
        "priority",
        ["phone", "chat"],
        "advance_replacement",
        "America/Chicago",
    )
    phone = support["targets"][0]
    assert (phone["channel"], phone["first_response_minutes"], phone["resolution_minutes"]) == (
        "phone",
        15,
        240,
    )
    # 16:30 on Christmas Eve: 15 minutes of it left for the first answer; the resolution's four
    # hours run on past Christmas Day, a holiday, into Saturday? No: the weekend too, to Monday.
    first = dt.datetime.fromisoformat(phone["first_response_due"])
    resolved = dt.datetime.fromisoformat(phone["resolution_due"])
    assert first == dt.datetime(2026, 12, 24, 16, 45, tzinfo=zone("America/Chicago"))
    assert resolved == dt.datetime(2026, 12, 28, 12, 30, tzinfo=zone("America/Chicago"))
    assert resolved == due_by(OFFICE, christmas_eve, 240)
    assert "Support: priority, by phone and chat." in answer["summary"]
    assert "Support: priority, by phone and chat." in answer["speech"]["text"]

    without = await desk.check(serial=contract["serial"])
    assert without["products"][0]["contracts"][0]["support"]["targets"][0]["first_response_due"] is None


async def test_a_target_past_years_of_holidays_still_falls_due(shop: Shop, app: CoverlineApp) -> None:
    """A schedule open on Mondays only, its next 300 Mondays holidays: a resolution target of a
    year of Mondays, which a catalog accepts, falls due in 2033, and the check says when."""
    monday = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    mondays = Schedule(
        "UTC",
        (Hours((W.MON,), "00:00", "24:00"),),
        tuple(monday.date() + dt.timedelta(weeks=n) for n in range(300)),
    )
    year_of_mondays = 52 * 24 * 60
    plan = plan_for_tests(
        code="test-mondays",
        waiting_period_days=0,
        support=Support(
            SupportLevel.STANDARD,
            [SupportChannel.PHONE],
            [SupportTarget(SupportChannel.PHONE, 60, year_of_mondays)],
            mondays,
            ExchangePolicy.REPAIR_FIRST,
        ),
    )
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([plan])
    contract = await shop.sell("test-mondays")
    answer = await shop.check(serial=contract["serial"], opened_at=monday.isoformat())
    [phone] = answer["products"][0]["contracts"][0]["support"]["targets"]
    assert dt.datetime.fromisoformat(phone["resolution_due"]) == monday + dt.timedelta(weeks=351, days=1)
    assert dt.datetime.fromisoformat(phone["first_response_due"]) == monday + dt.timedelta(weeks=300, hours=1)


async def test_no_support_is_granted_outside_cover_and_a_bad_opened_at_is_a_problem(desk: Shop) -> None:
    unpaid = await desk.sell("test-priority", pay=False)
    answer = await desk.check(serial=unpaid["serial"], opened_at="2026-12-01T10:00:00Z")
    assert answer["products"][0]["contracts"][0]["support"] is None
    assert "Support:" not in answer["summary"]
    response = await desk.client.get(
        "/v1/entitlements",
        params={"serial": unpaid["serial"], "opened_at": "2026-12-01T10:00:00"},
        headers=desk.keys.auth("support"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.opened_at"


async def test_a_batch_gives_the_due_by_instants_too(desk: Shop) -> None:
    contract = await desk.sell("test-priority")
    batch = await desk.call(
        "POST",
        "/v1/entitlements/check",
        "support",
        json={"lookups": [{"contract_id": contract["id"]}], "opened_at": "2026-12-01T15:00:00Z"},
    )
    [chat] = [
        t
        for t in batch["results"][0]["products"][0]["contracts"][0]["support"]["targets"]
        if t["channel"] == "chat"
    ]
    assert dt.datetime.fromisoformat(chat["first_response_due"]) == dt.datetime(
        2026, 12, 1, 15, 5, tzinfo=dt.UTC
    )


def test_a_catalog_names_a_schedule_once_and_each_plan_keeps_a_copy() -> None:
    plan = """
[schedules.office]
time_zone = "Europe/Stockholm"
hours = [{ days = ["mon", "tue", "wed", "thu", "fri"], opens = "08:00", closes = "17:00" }]
holidays = [2026-12-24]

[[plans]]
code = "office-plan"
version = 1
term_months = 12
billing = "upfront"
prices = [{ currency = "SEK", product_price_min = 0, price = 100 }]
coverages = [{ kind = "screen" }]
eligibility = { categories = ["phone"] }
texts.en = { name = "P", summary = "S", terms = "T" }
support = { level = "standard", channels = ["phone"], schedule = "SCHEDULE", targets = [
  { channel = "phone", first_response_minutes = 60, resolution_minutes = 600 },
] }
"""
    [found], problems = decode_catalog(plan.replace("SCHEDULE", "office").encode())
    assert problems == []
    assert found.support is not None and found.support.schedule.time_zone == "Europe/Stockholm"
    assert found.support.schedule.holidays == (dt.date(2026, 12, 24),)
    _, problems = decode_catalog(plan.replace("SCHEDULE", "night-shift").encode())
    assert [(p.path, p.message) for p in problems] == [
        ("$.plans[0].support.schedule", "no schedule 'night-shift' (defined: 24/7, office)")
    ]
    wrong_channel = plan.replace("SCHEDULE", "24/7").replace('channel = "phone"', 'channel = "chat"')
    _, problems = decode_catalog(wrong_channel.encode())
    assert [p.path for p in problems] == ["$.plans[0].support.targets[0]"]


async def test_an_approved_claim_is_offered_first_what_the_plans_exchange_policy_says(desk: Shop) -> None:
    ahead = await desk.sell("test-priority")
    plain = await desk.sell()
    replaced = await desk.claim(contract_id=ahead["id"])
    repaired = await desk.claim(contract_id=plain["id"])
    assert replaced["fulfilment_offered"] == ["replace", "repair", "reimburse", "gift_card"]
    assert repaired["fulfilment_offered"] == ["repair", "replace", "reimburse", "gift_card"]
    done = await desk.call(
        "POST", f"/v1/claims/{replaced['id']}/fulfil", "support", json={"method": "reimburse"}
    )
    assert done["status"] == "fulfilled"
    again = await desk.call("GET", f"/v1/claims/{replaced['id']}", "support")
    assert again["fulfilment_offered"] == []
