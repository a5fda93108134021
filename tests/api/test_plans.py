import datetime as dt

import httpx
import pytest

from api.app import CoverlineApp
from tests.conftest import Keys

pytestmark = pytest.mark.usefixtures("demo_catalog")


async def test_plans_are_listed_with_filters(client: httpx.AsyncClient, keys: Keys) -> None:
    everything = (await client.get("/v1/plans", headers=keys.auth("publishable"))).json()["data"]
    assert len(everything) >= 5
    phones = (
        await client.get("/v1/plans", params={"category": "phone"}, headers=keys.auth("support"))
    ).json()["data"]
    assert phones and all("phone" in p["eligibility"]["categories"] for p in phones)
    assert len(phones) < len(everything)
    in_vnd = (
        await client.get("/v1/plans", params={"currency": "VND"}, headers=keys.auth("publishable"))
    ).json()["data"]
    assert all("VND" in p["currencies"] for p in in_vnd)
    inactive = (
        await client.get("/v1/plans", params={"active": "false"}, headers=keys.auth("publishable"))
    ).json()["data"]
    assert all(not p["active"] for p in inactive)


async def test_a_plan_speaks_the_callers_language(client: httpx.AsyncClient, keys: Keys) -> None:
    listed = (await client.get("/v1/plans", headers=keys.auth("publishable"))).json()["data"][0]
    code, version = listed["code"], listed["version"]
    names = set()
    for locale in ("en", "fil", "hi", "sv", "ar", "vi"):
        response = await client.get(
            f"/v1/plans/{code}", params={"locale": locale}, headers=keys.auth("publishable")
        )
        assert response.status_code == 200
        assert response.json()["locale"] == locale
        names.add(response.json()["terms"])
    assert len(names) == 6
    versioned = await client.get(
        f"/v1/plans/{code}", params={"version": version}, headers=keys.auth("publishable")
    )
    assert versioned.json()["version"] == version


async def test_an_unknown_plan_is_a_404_problem(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.get("/v1/plans/no-such-plan", headers=keys.auth("publishable"))
    assert response.status_code == 404
    assert response.json()["type"] == "urn:coverline:problem:not-found"
    missing_version = await client.get(
        "/v1/plans/no-such-plan", params={"version": 7}, headers=keys.auth("publishable")
    )
    assert "version 7" in missing_version.json()["detail"]


async def test_a_plans_rules_come_as_clauses_per_currency(client: httpx.AsyncClient, keys: Keys) -> None:
    plan = (
        await client.get("/v1/plans/phone-protect-24", params={"locale": "vi"}, headers=keys.auth("support"))
    ).json()
    assert set(plan["clauses"]) == set(plan["currencies"])
    vnd = {c["topic"]: c["text"] for c in plan["clauses"]["VND"]}
    assert "300.000" in vnd["refund"]  # the VND cancellation fee, as Vietnamese writes it
    assert "yêu cầu" in vnd["claims"]
    offers = (
        await client.post(
            "/v1/offers",
            json={
                "product": {
                    "category": "phone",
                    "sku": "S24",
                    "price": {"amount": 1_500_000, "currency": "SEK"},
                    "purchase_date": str(dt.datetime.now(dt.UTC).date()),
                    "country": "SE",
                },
                "locale": "sv",
            },
            headers=keys.auth("publishable"),
        )
    ).json()["offers"]
    monthly = next(o for o in offers if o["plan"]["billing"] == "monthly")
    topics = [c["topic"] for c in monthly["plan"]["clauses"]]
    assert "grace" in topics and "renewal" in topics
    assert any("självrisk" in c["text"] and "kr" in c["text"] for c in monthly["plan"]["clauses"])


async def test_a_version_stored_before_a_plan_field_existed_loads_unchanged(
    app: CoverlineApp, client: object
) -> None:
    """A release adds a plan field with a default (renewal_notice_days): loading the same catalog
    again finds each published version unchanged, not edited."""
    import hashlib
    import json

    from sqlalchemy import update

    from entitlements.catalog import encode_plan
    from entitlements.store import plans as plan_store
    from entitlements.store.plans import PlanRepository, PublishOutcome
    from entitlements.store.tables import PlanRow
    from tests.api.shop import TEST_PLANS

    plan = TEST_PLANS[1]
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([plan])
        before = json.loads(encode_plan(plan))
        del before["renewal_notice_days"]
        stored = json.dumps(before, sort_keys=True, separators=(",", ":"))
        await session.execute(
            update(PlanRow)
            .where(PlanRow.code == plan.code)
            .values(definition=stored, digest=hashlib.sha256(stored.encode()).hexdigest())
        )
    plan_store._published.clear()
    async with app.state.db.sessions() as session, session.begin():
        [result] = await PlanRepository(session).publish([plan])
    assert result.outcome is PublishOutcome.UNCHANGED
