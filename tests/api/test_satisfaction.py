"""Satisfaction: a closed service order or a service given asks the customer, in their language,
with a single-use link to our rating page; every customer who answers is offered the merchant's
review link, whatever their rating; ratings are reported per month, plan and servicer."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.app import CoverlineApp, create_app
from api.links import SATISFACTION, signed_token
from entitlements.store.plans import PlanRepository
from tests.api.shop import Shop
from tests.api.test_benefits import PLAN, redeem
from tests.api.test_events import FAST, drain
from tests.api.test_mail import Inbox, inbox, text_of
from tests.api.test_repairs import approved_claim, fulfil, servicer
from tests.conftest import make_settings

PUBLIC = "https://coverline.example"
REVIEWS = "https://reviews.example/shop"
__all__ = ["inbox"]  # the fixture, for this module's tests


@pytest.fixture
async def app(database_url: str, inbox: tuple[Inbox, str]) -> AsyncIterator[CoverlineApp]:
    settings = make_settings(database_url, smtp_url=inbox[1], public_url=PUBLIC, review_url=REVIEWS, **FAST)
    yield create_app(settings)


@pytest.fixture
async def desk(shop: Shop, app: CoverlineApp) -> Shop:
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([PLAN])
    return shop


def rating_path(letters: list[Any], address: str) -> str:
    [letter] = [m for m in letters if str(m["To"]) == address and "/rate/" in text_of(m)]
    [link] = re.findall(rf"{PUBLIC}(/rate/\S+)", text_of(letter))
    return str(link)


async def rate(shop: Shop, path: str, rating: str, comment: str = "") -> tuple[Any, dict[str, str]]:
    """The answer to the rating form, and the form's fields as they were sent."""
    form = await shop.client.get(path)
    assert form.status_code == 200, form.text
    [csrf] = re.findall(r'name="csrf" value="([^"]+)"', form.text)
    sent = {"csrf": csrf, "rating": rating, "comment": comment}
    return await shop.client.post(path, data=sent), sent


async def test_a_session_given_asks_once_in_the_customers_language_and_the_review_link_is_for_all(
    desk: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    contract = await desk.sell("test-benefits")
    address = contract["customer"]["email"]
    await redeem(desk, reference="s-1", kind="tech_support_session", contract_id=contract["id"])
    await drain(app)
    path = rating_path(received.letters, address)
    letter = next(m for m in received.letters if "/rate/" in text_of(m))
    assert letter["Subject"] == "How did it go?"
    assert "Technical support session, included in Screen Guard: done." in text_of(letter)

    page = await desk.client.get(path)
    assert page.status_code == 200 and 'lang="en"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    unhappy, sent = await rate(desk, path, "2", "It took two calls.")
    assert unhappy.status_code == 200, unhappy.text
    assert 'id="thanks"' in unhappy.text and REVIEWS in unhappy.text  # not only for the happy
    again = await desk.client.post(path, data={**sent, "rating": "5"})  # the link is spent
    assert again.status_code == 403 and "already used" in again.text
    assert (await desk.client.get(path)).status_code == 403

    report = await desk.call("GET", "/v1/reports/satisfaction", "support")
    [line] = report["data"]
    assert (line["plan_code"], line["servicer_id"], line["answers"], line["average"]) == (
        "test-benefits",
        None,
        1,
        2.0,
    )
    assert line["ratings"] == [0, 1, 0, 0, 0]
    csv = await desk.client.get("/v1/reports/satisfaction.csv", headers=desk.keys.auth("admin"))
    assert (
        csv.text.splitlines()[0]
        == "month,plan_code,servicer_id,answers,average,rated_1,rated_2,rated_3,rated_4,rated_5"
    )
    assert csv.text.splitlines()[1].endswith(",test-benefits,,1,2.0,0,1,0,0,0")
    refused = await desk.client.get("/v1/reports/satisfaction", headers=desk.keys.auth("finance"))
    assert refused.status_code == 403


async def test_a_closed_repair_asks_in_swedish_and_is_rated_for_its_servicer(
    desk: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    lab = await servicer(desk, "Lab", ["phone"], ["US"])
    claim = await approved_claim(desk)
    order = (await fulfil(desk, claim["id"], method="repair"))["fulfilment_details"]["service_order_id"]
    await lab.call("POST", f"/v1/service-orders/{order}/accept")
    for step in ("product_received",):
        await lab.report(order, step)
    await lab.report(order, "diagnosed", estimate={"parts": 1000})
    await lab.report(order, "repair_started")
    await lab.report(order, "repaired", cost={"parts": 1000})
    await lab.report(order, "shipped")
    await drain(app)
    assert not [m for m in received.letters if "/rate/" in text_of(m)]  # not before it is closed
    await lab.report(order, "closed")
    await drain(app)
    [letter] = [m for m in received.letters if "/rate/" in text_of(m)]
    assert "The repair under Screen Guard is done." in text_of(letter)
    path = re.findall(rf"{PUBLIC}(/rate/\S+)", text_of(letter))[0]
    assert (await rate(desk, path, "5"))[0].status_code == 200
    [line] = (await desk.call("GET", "/v1/reports/satisfaction", "admin"))["data"]
    assert (line["servicer_id"], line["average"]) == (lab.id, 5.0)


async def test_a_service_with_a_visit_asks_when_the_visit_closes_not_when_booked(
    desk: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    fixer = await servicer(desk, "Fixer", ["phone"], ["US"])
    contract = await desk.sell("test-benefits")
    booked = await redeem(desk, reference="i-1", kind="installation", contract_id=contract["id"])
    await drain(app)
    assert not [m for m in received.letters if "/rate/" in text_of(m)]
    order = booked["service_order"]["id"]
    await fixer.call("POST", f"/v1/service-orders/{order}/accept")
    await fixer.report(order, "repair_started")
    await fixer.report(order, "repaired", cost={"labour": 2000})
    await fixer.report(order, "closed")
    await drain(app)
    [letter] = [m for m in received.letters if "/rate/" in text_of(m)]
    assert "Installation, included in Screen Guard: done." in text_of(letter)


async def test_a_forged_or_expired_link_is_refused(desk: Shop, app: CoverlineApp) -> None:
    settings = app.state.settings
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    for token in ("sat_0.1.AAAA", signed_token(settings, SATISFACTION, "sat_nothing", past)):
        page = await desk.client.get(f"/rate/{token}", headers={"Accept-Language": "sv"})
        assert page.status_code == 403
        assert 'lang="sv"' in page.text
    unknown = signed_token(settings, SATISFACTION, "sat_nothing", past + dt.timedelta(days=2))
    assert (await desk.client.get(f"/rate/{unknown}")).status_code == 403


async def test_an_erased_customers_notes_and_comments_go_and_their_ratings_stay_counted(
    desk: Shop, app: CoverlineApp, inbox: tuple[Inbox, str]
) -> None:
    received, _ = inbox
    contract = await desk.sell("test-benefits")
    await redeem(
        desk,
        reference="n-1",
        kind="tech_support_session",
        contract_id=contract["id"],
        note="Call Erin at home",
    )
    await drain(app)
    path = rating_path(received.letters, contract["customer"]["email"])
    assert (await rate(desk, path, "4", "Erin here: helpful"))[0].status_code == 200
    customer = contract["customer"]["id"]
    before = await desk.call("GET", f"/v1/customers/{customer}/export", "support")
    assert before["redemptions"][0]["note"] == "Call Erin at home"
    assert before["satisfaction"][0]["comment"] == "Erin here: helpful"
    await desk.call("POST", f"/v1/customers/{customer}/erase", "admin")
    after = await desk.call("GET", f"/v1/customers/{customer}/export", "support")
    assert after["redemptions"][0]["note"] is None
    assert (after["satisfaction"][0]["comment"], after["satisfaction"][0]["rating"]) == (None, 4)
    [line] = (await desk.call("GET", "/v1/reports/satisfaction", "support"))["data"]
    assert line["answers"] == 1
