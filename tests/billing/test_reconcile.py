"""Every category of the reconciliation, provoked on purpose; then a lost webhook found by it and
repaired by a sync."""

import datetime as dt

import httpx
import pytest
from sqlalchemy import update

from api.app import CoverlineApp
from billing.finance.reconcile import BalanceTransaction
from billing.sandbox import SandboxGateway
from billing.tables import LedgerEntryRow
from billing.webhooks.service import sync_events
from entitlements.store.base import utcnow
from tests.api.shop import Shop, publish_test_plans
from tests.billing.test_webhooks import deliver, event
from tests.conftest import Keys


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> Shop:
    await publish_test_plans(app)
    return Shop(client, keys)


async def reconciliation(shop: Shop, since: dt.datetime) -> dict[str, object]:
    until = utcnow() + dt.timedelta(minutes=1)
    params = {"from": since.isoformat(), "to": until.isoformat()}
    result: dict[str, object] = await shop.call("GET", "/v1/finance/reconciliation", "finance", params=params)
    return result


def nonzero(report: dict[str, object]) -> dict[str, int]:
    """The report's categories that counted something."""
    counts: dict[str, int] = report["counts"]  # type: ignore[assignment]
    return {category: n for category, n in counts.items() if n}


async def test_every_category_is_found(shop: Shop, app: CoverlineApp) -> None:
    sandbox: SandboxGateway = app.state.gateway
    since = utcnow() - dt.timedelta(minutes=1)
    sold = [await shop.checkout("test-screen-guard") for _ in range(7)]
    # A refund that Stripe later reports as failed.
    refunded = sold[3]["contract"]["id"]
    quote = await shop.call("POST", f"/v1/contracts/{refunded}/refund-quote", "support")
    cancel = await shop.call(
        "POST", f"/v1/contracts/{refunded}/cancel", "support", json={"refund": quote["refund"]}
    )
    refund_id = cancel["refund"]["id"]
    sandbox.balance.append(
        BalanceTransaction(
            "txn_fail", "refund_failure", 7900, 0, 7900, "USD", "available", sandbox.now(), (refund_id,)
        )
    )

    # A charge whose webhook never came.
    async def lose(to: object) -> int:
        sandbox.outbox.clear()
        return 0

    deliver, sandbox.deliver = sandbox.deliver, lose  # type: ignore[method-assign]
    lost = await shop.checkout("test-screen-guard")
    sandbox.deliver = deliver  # type: ignore[method-assign]
    # The ledger and Stripe disagreeing on amount and on currency; and a ledger row Stripe never saw.
    async with app.state.db.sessions() as session, session.begin():
        await session.execute(
            update(LedgerEntryRow)
            .where(LedgerEntryRow.contract_id == sold[0]["contract"]["id"])
            .values(amount=7000)
        )
        await session.execute(
            update(LedgerEntryRow)
            .where(LedgerEntryRow.contract_id == sold[1]["contract"]["id"])
            .values(currency="EUR")
        )
        # Charges that bought nothing, as the webhook books them (refunded by a job).
        unwanted_kinds = ("duplicate_payment", "late_payment", "mismatched_payment")
        for sale, unwanted in zip(sold[4:], unwanted_kinds, strict=True):
            await session.execute(
                update(LedgerEntryRow)
                .where(LedgerEntryRow.contract_id == sale["contract"]["id"], LedgerEntryRow.kind == "sale")
                .values(kind=unwanted)
            )
        session.add(
            LedgerEntryRow(
                entry_key="charge:pi_ghost",
                kind="sale",
                amount=100,
                currency="USD",
                stripe_payment_intent="pi_ghost",
                occurred_at=utcnow(),
                recorded_at=utcnow(),
            )
        )

    report = await reconciliation(shop, since)
    assert report["counts"] == {
        "matched": 3,  # sold[2]'s charge, sold[3]'s charge and its refund (whose failure mismatches)
        "missing_in_ledger": 1,
        "missing_in_stripe": 1,
        "amount_mismatch": 1,
        "currency_mismatch": 1,
        "status_mismatch": 1,
        "duplicate_payment": 1,
        "late_payment": 1,
        "mismatched_payment": 1,
    }
    [usd] = [t for t in report["totals"] if t["currency"] == "USD"]  # type: ignore[union-attr]
    assert usd["gross"] == 8 * 7900 - 7900 + 7900  # eight charges, a refund, its failure
    assert usd["net"] == usd["gross"] - usd["fee"]

    # The lost webhook, found above, is repaired by a sync; the next run matches it.
    await sync_events(app.state.db.unit_of_work, sandbox, since)
    again = await reconciliation(shop, since)
    assert again["counts"]["missing_in_ledger"] == 0  # type: ignore[index]
    assert (await shop.call("GET", f"/v1/contracts/{lost['contract']['id']}", "support"))[
        "status"
    ] == "active"


async def test_a_refund_failure_matches_the_reversal_its_webhook_booked(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Told that the refund failed, the ledger agrees with Stripe's `refund_failure`."""
    sandbox: SandboxGateway = app.state.gateway
    since = utcnow() - dt.timedelta(minutes=1)
    sold = await shop.checkout("test-screen-guard")
    contract_id = sold["contract"]["id"]
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    cancel = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    refund = cancel["refund"]
    sandbox.balance.append(
        BalanceTransaction(
            "txn_failed",
            "refund_failure",
            refund["amount"]["amount"],
            0,
            refund["amount"]["amount"],
            "USD",
            "available",
            sandbox.now(),
            (refund["id"],),
        )
    )
    assert (await reconciliation(shop, since))["counts"]["status_mismatch"] == 1  # type: ignore[index]
    failed = {
        "id": refund["id"],
        "amount": refund["amount"]["amount"],
        "currency": "usd",
        "status": "failed",
        "payment_intent": sold["payment_intent"],
    }
    told = await deliver(client, event("evt_refund_failed", "refund.updated", failed))
    assert told.json()["outcome"] == "applied", told.text
    report = await reconciliation(shop, since)
    found = nonzero(report)
    assert found == {"matched": 3}  # the charge, the refund, its failure


async def test_a_won_dispute_and_its_reversal_match_two_transactions(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """The dispute's row and its reversal's name one dispute: each matches its own transaction."""
    sandbox: SandboxGateway = app.state.gateway
    since = utcnow() - dt.timedelta(minutes=1)
    sold = await shop.checkout("test-screen-guard")
    dispute = {"id": "dp_won", "amount": 7900, "currency": "usd", "payment_intent": sold["payment_intent"]}
    await deliver(
        client, event("evt_dp_open", "charge.dispute.created", {**dispute, "status": "needs_response"})
    )
    await deliver(client, event("evt_dp_won", "charge.dispute.closed", {**dispute, "status": "won"}))
    for txn, category, amount in (("txn_dp", "dispute", -7900), ("txn_dp_back", "dispute_reversal", 7900)):
        sandbox.balance.append(
            BalanceTransaction(
                txn, category, amount, 0, amount, "USD", "available", sandbox.now(), ("dp_won",)
            )
        )
    report = await reconciliation(shop, since)
    found = nonzero(report)
    assert found == {"matched": 3}  # the charge, the dispute, its reversal


async def test_what_claims_cost_is_not_stripes_to_reconcile(shop: Shop, app: CoverlineApp) -> None:
    """Coverline pays no one: a claim's cost is in the ledger but never moved through Stripe, so it
    is neither missing in Stripe nor part of the ledger's total beside Stripe's."""
    since = utcnow() - dt.timedelta(minutes=1)
    sold = await shop.checkout("test-screen-guard")
    before = await reconciliation(shop, since)
    async with app.state.db.sessions() as session, session.begin():
        session.add(
            LedgerEntryRow(
                entry_key="claim_cost:clm_reconcile:repair",
                kind="claim_cost",
                amount=-5000,
                currency="USD",
                contract_id=sold["contract"]["id"],
                claim_id="clm_reconcile",
                occurred_at=utcnow(),
                recorded_at=utcnow(),
            )
        )
    after = await reconciliation(shop, since)
    assert after["counts"] == before["counts"] and after["totals"] == before["totals"]
