import csv
import datetime as dt
import io
import time

import httpx
import msgspec

from api.app import CoverlineApp
from billing.tables import LedgerEntryRow
from billing.webhooks.unwanted import UnwantedRefund, refund_unwanted
from tests.api.shop import Shop
from tests.billing.test_webhooks import deliver, event, pay_again, queued_jobs, subscription_ended
from tests.conftest import Keys


async def test_the_ledger_pages_by_cursor_and_only_finance_reads_it(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    sold = [await shop.checkout("test-screen-guard") for _ in range(3)]
    first = await shop.call("GET", "/v1/finance/ledger", "finance", params={"limit": 4})
    assert [e["kind"] for e in first["data"]] == ["fee", "sale", "fee", "sale"]  # Stripe's fee on each charge
    assert first["data"][1]["amount"] == {"amount": 7900, "currency": "USD"}
    assert first["data"][1]["amount_decimal"] == "79.00"
    assert first["data"][0]["amount_decimal"] == "-2.59"
    rest = await shop.call(
        "GET", "/v1/finance/ledger", "finance", params={"limit": 4, "cursor": first["next_cursor"]}
    )
    assert (len(rest["data"]), rest["next_cursor"]) == (2, None)
    for foreign in ("²", "٣", "１２"):  # digits to `str.isdigit`, not a cursor this API gave
        answer = await client.get(
            "/v1/finance/ledger", params={"cursor": foreign}, headers=keys.auth("finance")
        )
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "cursor", answer.text
    contracts = {e["contract_id"] for e in first["data"] + rest["data"]}
    assert contracts == {s["contract"]["id"] for s in sold}
    mine = {"contract_id": sold[0]["contract"]["id"]}
    assert len((await shop.call("GET", "/v1/finance/ledger", "finance", params=mine))["data"]) == 2
    assert (await client.get("/v1/finance/ledger", headers=keys.auth("support"))).status_code == 403
    assert (
        await client.get(
            "/v1/finance/ledger", params={"from": "2026-01-01T00:00:00"}, headers=keys.auth("finance")
        )
    ).status_code == 422


async def test_the_ledger_as_csv_with_stable_columns(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    await shop.checkout("test-screen-guard")
    response = await client.get(
        "/v1/finance/ledger.csv", params={"bom": "true"}, headers=keys.auth("finance")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffid,occurred_at,kind,amount_minor,amount,currency,contract_id")
    fee, sale = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert (sale["kind"], sale["amount_minor"], sale["amount"], sale["currency"]) == (
        "sale",
        "7900",
        "79.00",
        "USD",
    )
    assert (fee["kind"], fee["amount_minor"], fee["amount"]) == ("fee", "-259", "-2.59")
    assert "@" not in text  # ids, never customer contacts


async def test_deferred_revenue_is_earned_over_the_term_and_released_by_a_refund(shop: Shop) -> None:
    sold = await shop.checkout("test-screen-guard")
    start = dt.datetime.fromisoformat(sold["contract"]["coverage_periods"][0]["start"])
    end = dt.datetime.fromisoformat(sold["contract"]["coverage_periods"][0]["end"])
    halfway = (start + (end - start) / 2).isoformat()
    [position] = (
        await shop.call("GET", "/v1/finance/deferred-revenue", "finance", params={"as_of": halfway})
    )["data"]
    assert position["collected"]["amount"] == 7900
    assert 3940 <= position["recognized"]["amount"] <= 3950
    assert position["recognized"]["amount"] + position["deferred"]["amount"] == 7900

    contract_id = sold["contract"]["id"]
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    later = (end + dt.timedelta(days=1)).isoformat()
    [after] = (await shop.call("GET", "/v1/finance/deferred-revenue", "finance", params={"as_of": later}))[
        "data"
    ]
    assert (after["collected"]["amount"], after["deferred"]["amount"]) == (0, 0)  # free look: all back


async def test_a_cancel_with_nothing_back_leaves_nothing_deferred(shop: Shop) -> None:
    """A monthly plan cancelled after its free look: no refund, cover cut now; what it kept is
    earned now, not over the rest of the month no one is covered for."""
    sold = await shop.checkout("test-monthly")
    contract_id = sold["contract"]["id"]
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)  # past the free look
    await shop.lifecycle(contract_id, "cancel", f"cancel-{contract_id}", at=late)
    for as_of, deferred in ((late - dt.timedelta(days=1), True), (late + dt.timedelta(minutes=1), False)):
        [position] = (
            await shop.call(
                "GET", "/v1/finance/deferred-revenue", "finance", params={"as_of": as_of.isoformat()}
            )
        )["data"]
        assert (position["deferred"]["amount"] > 0) is deferred, (as_of, position)
        assert position["collected"]["amount"] == 7900


async def test_a_duplicate_payment_and_its_refund_leave_the_sale_earned_day_by_day(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    sold = await shop.checkout("test-screen-guard")
    contract_id = sold["contract"]["id"]
    await pay_again(client, contract_id, "twice")
    [(_, job)] = await queued_jobs(app)
    await refund_unwanted(app.state.db.unit_of_work, app.state.gateway, msgspec.convert(job, UnwantedRefund))
    start = dt.datetime.fromisoformat(sold["contract"]["coverage_periods"][0]["start"])
    end = dt.datetime.fromisoformat(sold["contract"]["coverage_periods"][0]["end"])
    halfway = (start + (end - start) / 2).isoformat()
    [position] = (
        await shop.call("GET", "/v1/finance/deferred-revenue", "finance", params={"as_of": halfway})
    )["data"]
    assert position["collected"]["amount"] == 7900  # the duplicate came and went back
    assert 3940 <= position["recognized"]["amount"] <= 3950  # not all 7,900 at once


async def test_deferred_revenue_as_csv(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    await shop.checkout("test-screen-guard")
    response = await client.get("/v1/finance/deferred-revenue.csv", headers=keys.auth("finance"))
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["currency"] == "USD"
    assert int(row["recognized_minor"]) + int(row["deferred_minor"]) == int(row["collected_minor"]) == 7900


async def test_the_renewals_report_follows_each_renewal(
    shop: Shop, client: httpx.AsyncClient, keys: Keys
) -> None:
    for _ in range(2):
        await shop.checkout("test-monthly")
    await shop.call("POST", "/v1/sandbox/clock/advance", json={"days": 31})  # both renew
    # From now on renewals are declined: both fail, and after the retries both lapse.
    await shop.call(
        "POST", "/v1/sandbox/clock/advance", json={"days": 31, "renewal_card": "pm_card_chargeDeclined"}
    )
    end = (await shop.call("POST", "/v1/sandbox/clock/advance", json={"days": 20}))["now"]
    report = await shop.call("GET", "/v1/finance/renewals", "finance", params={"to": end})
    totals = {
        field: sum(line[field] for line in report["data"])
        for field in (
            "due",
            "renewed",
            "renewed_amount",
            "failed",
            "failed_amount",
            "lapsed",
            "lapsed_amount",
        )
    }
    assert totals == {
        "due": 4,
        "renewed": 2,
        "renewed_amount": 2 * 7900,
        "failed": 2,
        "failed_amount": 2 * 7900,
        "lapsed": 2,
        "lapsed_amount": 2 * 7900,
    }
    assert {line["plan_code"] for line in report["data"]} == {"test-monthly"}
    csv_text = (
        await client.get("/v1/finance/renewals.csv", params={"to": end}, headers=keys.auth("finance"))
    ).text
    assert csv_text.startswith(
        "month,currency,plan_code,due,renewed,renewed_amount,failed,failed_amount,recovered,in_grace,lapsed"
    )


async def test_a_cancelled_subscription_is_counted_once_and_an_upfront_term_not_at_all(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Our cancel, then Stripe's `customer.subscription.deleted` for it: two facts of one ending,
    counted twice; and an upfront term's cancellation was listed among the renewals."""
    monthly = (await shop.checkout("test-monthly"))["contract"]["id"]
    upfront = (await shop.checkout("test-screen-guard"))["contract"]["id"]
    for contract_id in (monthly, upfront):
        quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
        await shop.call(
            "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
        )
    [subscription] = app.state.gateway.subscriptions
    ended = subscription_ended(subscription, monthly, int(time.time()))
    told = await deliver(client, event("evt_sub_ended_after_cancel", "customer.subscription.deleted", ended))
    assert told.json()["outcome"] == "applied"
    history = await shop.call("GET", f"/v1/contracts/{monthly}/history", "support")
    assert [h["action"] for h in history["data"]].count("cancelled") >= 1
    report = await shop.call("GET", "/v1/finance/renewals", "finance")
    [line] = report["data"]
    assert (line["plan_code"], line["cancelled"], line["cancelled_amount"]) == ("test-monthly", 1, 7900)


async def test_the_loss_ratio_matches_figures_worked_by_hand(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    """A USD 120.00 sale earned straight-line over 2026 (365 days), and a USD 50.00 claim cost in
    March. Earned by month, rounded down at each month's end: January 12000 × 31/365 = 1019;
    February 12000 × 59/365 = 1939, less 1019 = 920; March 12000 × 90/365 = 2958, less 1939 = 1019.
    March's loss ratio: 5000 / 1019 = 4.9068."""
    contract = await shop.sell()
    year = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    async with app.state.db.sessions() as session, session.begin():
        session.add_all(
            [
                LedgerEntryRow(
                    entry_key="hand-sale",
                    kind="sale",
                    amount=12000,
                    currency="USD",
                    contract_id=contract["id"],
                    period_start=year,
                    period_end=year.replace(year=2027),
                    occurred_at=year,
                    recorded_at=year,
                ),
                LedgerEntryRow(
                    entry_key="claim_cost:clm_hand:repair",
                    kind="claim_cost",
                    amount=-5000,
                    currency="USD",
                    contract_id=contract["id"],
                    claim_id="clm_hand",
                    servicer_id="srv_hand",
                    occurred_at=dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
                    recorded_at=year,
                ),
            ]
        )
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    report = await shop.call("GET", "/v1/finance/loss-ratio", "finance", params=window)
    assert [
        (r["month"], r["plan_code"], r["earned"], r["claim_cost"], r["loss_ratio"]) for r in report["data"]
    ] == [
        ("2026-01-01", "test-screen-guard", 1019, 0, 0.0),
        ("2026-02-01", "test-screen-guard", 920, 0, 0.0),
        ("2026-03-01", "test-screen-guard", 1019, 5000, 4.9068),
    ]
    costs = await shop.call("GET", "/v1/finance/claims-cost", "finance", params=window)
    assert [(c["claim_id"], c["servicer_id"], c["cost"]) for c in costs["data"]] == [
        ("clm_hand", "srv_hand", {"amount": 5000, "currency": "USD"})
    ]
    assert costs["totals"] == [{"amount": 5000, "currency": "USD"}]
    as_csv = await client.get("/v1/finance/loss-ratio.csv", params=window, headers=keys.auth("finance"))
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["month"], r["earned"], r["claim_cost"], r["loss_ratio"]) for r in rows] == [
        ("2026-01", "10.19", "0.00", "0.0000"),
        ("2026-02", "9.20", "0.00", "0.0000"),
        ("2026-03", "10.19", "50.00", "4.9068"),
    ]
    cost_csv = await client.get("/v1/finance/claims-cost.csv", params=window, headers=keys.auth("finance"))
    assert [r["cost"] for r in csv.DictReader(io.StringIO(cost_csv.text))] == ["50.00"]
    deferred = await shop.call(
        "GET", "/v1/finance/deferred-revenue", "finance", params={"as_of": "2026-12-31T00:00:00Z"}
    )
    assert deferred["data"][0]["collected"] == {"amount": 12000, "currency": "USD"}  # a cost is never revenue
    assert (await client.get("/v1/finance/loss-ratio", headers=keys.auth("support"))).status_code == 403
