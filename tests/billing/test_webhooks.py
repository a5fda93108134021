"""The webhook endpoint, with events built as Stripe's SDK builds them (current shapes) and as
localstripe sends them (older shapes)."""

import datetime as dt
import re
import secrets
import time
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import stripe
from sqlalchemy import func, select, text, update

from api.app import CoverlineApp
from api.routes.billing import DirectWebhook
from billing import stripe_objects as so
from billing.tables import LedgerEntryRow, StripeEventRow
from billing.webhooks.service import APPLIED, HANDLERS, Handled, Reads
from billing.webhooks.signatures import sign
from entitlements import jobs
from entitlements.store.tables import ContractRow
from entitlements.store.unit_of_work import UnitOfWork
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import WEBHOOK_SECRETS, Keys


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> Shop:
    await publish_test_plans(app)
    return Shop(client, keys)


def event(
    event_id: str, event_type: str, obj: stripe.StripeObject | dict[str, Any], created: int | None = None
) -> bytes:
    data = obj.to_dict() if isinstance(obj, stripe.StripeObject) else obj
    return msgspec.json.encode(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": created or int(time.time()),
            "data": {"object": data},
        }
    )


async def deliver(
    client: httpx.AsyncClient, raw: bytes, secret: str = WEBHOOK_SECRETS[0], at: float | None = None
) -> httpx.Response:
    header = sign(raw, secret, int(at if at is not None else time.time()))
    return await client.post(
        "/v1/stripe/webhooks",
        content=raw,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


async def stored_events(app: CoverlineApp) -> int:
    async with app.state.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(StripeEventRow)) or 0)


async def pending_subscription(shop: Shop, app: CoverlineApp) -> dict[str, Any]:
    contract = await shop.sell("test-monthly", pay=False)
    return contract


def current_invoice(
    contract_id: str, subscription: str, invoice_id: str, reason: str, start: dt.datetime
) -> stripe.Invoice:
    """An invoice in the shape of API versions since 2025-03-31 (parent, payments, pricing)."""
    return stripe.Invoice.construct_from(
        {
            "id": invoice_id,
            "object": "invoice",
            "status": "paid",
            "billing_reason": reason,
            "amount_paid": 7900,
            "amount_due": 7900,
            "currency": "usd",
            "period_start": int(start.timestamp()),
            "period_end": int((start + dt.timedelta(days=30)).timestamp()),
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": subscription,
                    "metadata": {"contract_id": contract_id},
                },
            },
            "payments": {
                "object": "list",
                "data": [
                    {
                        "object": "invoice_payment",
                        "amount_paid": 7900,
                        "status": "paid",
                        "payment": {"type": "payment_intent", "payment_intent": f"pi_{invoice_id}"},
                    }
                ],
            },
            "lines": {
                "object": "list",
                "data": [{"amount": 7900, "pricing": {"price_details": {"price": "price_1"}}}],
            },
        },
        "sk_test_x",
    )


async def test_an_invoice_in_the_current_shape_grants_coverage(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    contract = await pending_subscription(shop, app)
    invoice = current_invoice(
        contract["id"], "sub_new_shape", "in_1", "subscription_create", dt.datetime.now(dt.UTC)
    )
    response = await deliver(client, event("evt_1", "invoice.paid", invoice))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "event_id": "evt_1", "outcome": "applied"}
    after = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert after["status"] == "active"
    assert len(after["coverage_periods"]) == 1
    async with app.state.db.sessions() as session:
        [entry] = list(await session.scalars(select(LedgerEntryRow)))
    assert (entry.kind, entry.amount, entry.stripe_invoice, entry.stripe_payment_intent) == (
        "sale",
        7900,
        "in_1",
        "pi_in_1",
    )


async def test_an_invoice_in_localstripes_older_shape_grants_coverage(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    contract = await pending_subscription(shop, app)
    subscription = stripe.Subscription.construct_from(
        {
            "id": "sub_old_shape",
            "object": "subscription",
            "status": "active",
            "metadata": {"contract_id": contract["id"]},
            "current_period_start": int(time.time()),
            "current_period_end": int(time.time()) + 2_592_000,
        },
        "sk_test_x",
    )
    assert (await deliver(client, event("evt_sub", "customer.subscription.created", subscription))).json()[
        "outcome"
    ] == "applied"
    old_invoice = {
        "id": "in_old",
        "object": "invoice",
        "subscription": "sub_old_shape",
        "paid": True,
        "charge": "ch_old",
        "billing_reason": "subscription_create",
        "amount_paid": 7900,
        "currency": "usd",
        "status": "paid",
    }
    response = await deliver(client, event("evt_old", "invoice.payment_succeeded", old_invoice))
    assert response.json()["outcome"] == "applied"
    assert (await shop.call("GET", f"/v1/contracts/{contract['id']}", "support"))["status"] == "active"


async def test_duplicates_are_stored_once_and_do_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    contract = await pending_subscription(shop, app)
    raw = event(
        "evt_dup",
        "invoice.paid",
        current_invoice(contract["id"], "sub_d", "in_d", "subscription_create", dt.datetime.now(dt.UTC)),
    )
    first, second = await deliver(client, raw), await deliver(client, raw, secret=WEBHOOK_SECRETS[1])
    assert (first.json()["outcome"], second.json()["outcome"]) == ("applied", "duplicate")
    assert await stored_events(app) == 1
    assert (
        len((await shop.call("GET", f"/v1/contracts/{contract['id']}", "support"))["coverage_periods"]) == 1
    )


async def test_a_handler_that_breaks_another_constraint_is_not_taken_for_a_duplicate(
    client: httpx.AsyncClient, app: CoverlineApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the event's own key makes a duplicate: any other broken constraint rolls the event
    back unstored and answers 5xx, so that Stripe delivers it again."""

    async def broken(run: UnitOfWork, *_: Any) -> Handled:
        await run.rows(text("INSERT INTO stripe_events (id) VALUES ('evt_other') RETURNING id"))
        return APPLIED

    monkeypatch.setitem(HANDLERS, "issuing_card.created", Reads(so.Ref, broken))
    raw = event("evt_broken", "issuing_card.created", {"id": "ic_1", "object": "issuing.card"})
    response = await deliver(client, raw)
    assert response.status_code == 500
    assert await stored_events(app) == 0
    monkeypatch.delitem(HANDLERS, "issuing_card.created")
    assert (await deliver(client, raw)).json()["outcome"] == "ignored"
    assert await stored_events(app) == 1


def _deliveries(tag: str, contract_id: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """(what, the body, extra headers): one of each kind of answer, for one contract; `tag`
    keeps two such sets apart, at the same length."""
    start = dt.datetime.now(dt.UTC)
    paid = event(
        f"evt_{tag}_paid", "invoice.paid", current_invoice(contract_id, f"sub_{tag}", f"in_{tag}", "x", start)
    )
    return [
        ("applied", paid, {}),
        ("duplicate", paid, {}),
        ("ignored", event(f"evt_{tag}_other", "issuing_card.created", {"id": "ic_1"}), {}),
        ("malformed", msgspec.json.encode({"id": f"evt_{tag}_bad", "type": "invoice.paid"}), {}),
        ("unknown", event(f"evt_{tag}_gone", "payment_intent.succeeded", _intent(f"no_{tag}")), {}),
        ("forged", event(f"evt_{tag}_forged", "invoice.paid", {"id": "in_x"}), {"secret": "whsec_x"}),
        ("unsigned", event(f"evt_{tag}_unsigned", "invoice.paid", {"id": "in_x"}), {"secret": ""}),
        ("idempotent", event(f"evt_{tag}_key", "issuing_card.created", {}), {"Idempotency-Key": tag}),
    ]


def _intent(contract_id: str) -> dict[str, Any]:
    return {
        "id": "pi_x",
        "object": "payment_intent",
        "amount": 1,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"contract_id": contract_id},
    }


async def _answer(client: httpx.AsyncClient, raw: bytes, extra: dict[str, str]) -> tuple[Any, ...]:
    headers = {"Content-Type": "application/json", "X-Request-Id": "req_same"}
    secret = extra.pop("secret", WEBHOOK_SECRETS[0])
    if secret:
        headers["Stripe-Signature"] = sign(raw, secret, int(time.time()))
    response = await client.post("/v1/stripe/webhooks", content=raw, headers={**headers, **extra})
    body = response.json()
    for name in ("event_id", "detail"):
        if isinstance(body, dict) and name in body:  # the tag differs, and so does a hash of the body
            body[name] = re.sub(r"_[ab]_|_unreadable_\w+", "_", body[name])
    kept = sorted((name, value) for name, value in response.headers.multi_items() if name != "date")
    return response.status_code, kept, body


async def test_the_direct_answer_is_the_controllers_answer(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """`DirectWebhook` answers Stripe ahead of Litestar: whatever it answers is what the
    controller answers to the same delivery, headers and body, and what it cannot answer
    (a bad signature, an Idempotency-Key) reaches the controller."""
    shortcuts = app.edge.body_shortcuts
    direct = shortcuts[("POST", "/v1/stripe/webhooks")]
    assert isinstance(direct, DirectWebhook)
    answered: list[bytes] = []

    async def watched(scope: dict[str, Any], body: bytes, send: Any) -> bool:
        done = await direct(scope, body, send)
        if done:
            answered.append(body)
        return done

    ahead, behind = await pending_subscription(shop, app), await pending_subscription(shop, app)
    cases = zip(_deliveries("a", ahead["id"]), _deliveries("b", behind["id"]), strict=True)
    statuses = set()
    for (what, fast_raw, fast_extra), (_, slow_raw, slow_extra) in cases:
        app.edge.body_shortcuts = {("POST", "/v1/stripe/webhooks"): watched}
        fast = await _answer(client, fast_raw, fast_extra)
        app.edge.body_shortcuts = {}
        assert fast == await _answer(client, slow_raw, slow_extra), what
        statuses.add((what, fast[0], fast[2].get("outcome") or fast[2]["type"].rsplit(":", 1)[-1]))
    app.edge.body_shortcuts = shortcuts
    assert len(answered) == 5  # applied, duplicate, ignored, malformed, unknown: not the rest
    assert statuses == {
        ("applied", 200, "applied"),
        ("duplicate", 200, "duplicate"),
        ("ignored", 200, "ignored"),
        ("malformed", 200, "malformed"),
        ("unknown", 200, "unknown_contract"),
        ("forged", 400, "invalid-signature"),
        ("unsigned", 400, "invalid-signature"),
        ("idempotent", 200, "ignored"),
    }
    for contract in (ahead, behind):
        found = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
        assert (found["status"], len(found["coverage_periods"])) == ("active", 1)


async def test_an_event_that_fails_ahead_of_the_app_is_tried_again_by_the_controller(
    client: httpx.AsyncClient, app: CoverlineApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[int] = []

    async def flaky(run: UnitOfWork, *_: Any) -> Handled:
        await run.rows(text("SELECT 1"))  # the event's row goes with it, and is rolled back
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionResetError("the first try loses its connection")
        return APPLIED

    monkeypatch.setitem(HANDLERS, "issuing_card.created", Reads(so.Ref, flaky))
    response = await deliver(client, event("evt_flaky", "issuing_card.created", {"id": "ic_1"}))
    assert (response.status_code, response.json()["outcome"], len(tries)) == (200, "applied", 2)
    assert await stored_events(app) == 1


async def test_unknown_types_are_acknowledged_and_ignored(
    client: httpx.AsyncClient, app: CoverlineApp
) -> None:
    response = await deliver(
        client, event("evt_x", "issuing_card.created", {"id": "ic_1", "object": "issuing.card"})
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"


@pytest.mark.parametrize(
    ("secret", "at_offset", "tamper"),
    [
        ("whsec_forged", 0, False),
        (WEBHOOK_SECRETS[0], -301, False),
        # Well past the tolerance: a signature a second ahead becomes acceptable while a slow
        # machine handles the request.
        (WEBHOOK_SECRETS[0], 360, False),
        (WEBHOOK_SECRETS[0], 0, True),
    ],
    ids=["forged", "stale", "future-dated", "tampered"],
)
async def test_bad_signatures_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, app: CoverlineApp, secret: str, at_offset: int, tamper: bool
) -> None:
    raw = event("evt_bad", "invoice.paid", {"id": "in_bad", "object": "invoice"})
    header = sign(raw, secret, int(time.time()) + at_offset)
    body = raw.replace(b"in_bad", b"in_BAD") if tamper else raw
    response = await client.post(
        "/v1/stripe/webhooks",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("invalid-signature")
    assert await stored_events(app) == 0


async def test_a_failure_that_is_paid_by_now_is_not_past_due(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """invoice.payment_failed arriving after the retry paid: the invoice's state decides."""
    result = await shop.checkout("test-monthly")
    gateway = app.state.gateway
    [invoice] = [i for i in gateway.invoices.values()]
    stale_failure = {**msgspec.to_builtins(invoice), "status": "open", "billing_reason": "subscription_cycle"}
    response = await deliver(client, event("evt_late_failure", "invoice.payment_failed", stale_failure))
    assert response.json()["outcome"] == "ignored"
    assert (await shop.call("GET", f"/v1/contracts/{result['contract']['id']}", "support"))[
        "status"
    ] == "active"


async def test_a_first_invoice_failing_in_the_older_shape_leaves_the_contract_pending(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """localstripe's invoices carry no `billing_reason`: a contract never paid is at its first
    payment, which failing leaves it pending (to be abandoned), not past due."""
    result = await shop.checkout("test-monthly", card=None)
    contract_id = result["contract"]["id"]
    assert result["contract"]["status"] == "pending_payment"
    [invoice] = list(app.state.gateway.invoices.values())
    failure = {**msgspec.to_builtins(invoice), "status": "open", "billing_reason": None}
    response = await deliver(client, event("evt_first_failed", "invoice.payment_failed", failure))
    assert response.json()["outcome"] == "ignored", response.text
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert (contract["status"], contract["grace_until"]) == ("pending_payment", None)


async def test_an_earlier_attempts_invoice_failing_late_leaves_the_paid_contract_alone(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """The invoice of a subscription the contract no longer pays by (a declined attempt's), in the
    older shape, arriving after the contract was paid: not a renewal that failed."""
    result = await shop.checkout("test-monthly")
    [invoice] = list(app.state.gateway.invoices.values())
    earlier = msgspec.to_builtins(invoice)
    details = earlier["parent"]["subscription_details"]
    earlier |= {"id": "in_earlier", "status": "open", "billing_reason": None}
    earlier["parent"]["subscription_details"] = {**details, "subscription": "sub_earlier_attempt"}
    response = await deliver(client, event("evt_earlier_failed", "invoice.payment_failed", earlier))
    assert response.json()["outcome"] == "ignored", response.text
    contract = await shop.call("GET", f"/v1/contracts/{result['contract']['id']}", "support")
    assert (contract["status"], contract["grace_until"]) == ("active", None)


async def test_an_event_for_a_contract_that_never_existed_is_acknowledged_as_unknown(
    client: httpx.AsyncClient, app: CoverlineApp
) -> None:
    """Checkout commits its contract before Stripe hears of it: a contract id in Stripe's
    metadata that we do not have was never committed (say, a crash before our first commit
    on another server), so asking Stripe to deliver it again for days would change nothing."""
    pi = {
        "id": "pi_orphan",
        "object": "payment_intent",
        "amount": 100,
        "currency": "usd",
        "metadata": {"contract_id": "ctr_never_committed"},
    }
    response = await deliver(client, event("evt_orphan", "payment_intent.succeeded", pi))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_contract"
    assert await stored_events(app) == 1
    again = await deliver(client, event("evt_orphan", "payment_intent.succeeded", pi))
    assert again.json()["outcome"] == "duplicate"


async def test_disputes_reach_the_ledger_and_the_contract_history(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    sold = await shop.checkout("test-screen-guard")
    pi = sold["payment_intent"]
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 7900,
        "currency": "usd",
        "payment_intent": pi,
        "status": "needs_response",
    }
    assert (await deliver(client, event("evt_dp_1", "charge.dispute.created", dispute))).json()[
        "outcome"
    ] == "applied"
    checked = await shop.check(serial=sold["serial"])
    assert (checked["covered"], checked["products"][0]["contracts"][0]["disputed"]) == (True, True)
    won = {**dispute, "status": "won"}
    assert (await deliver(client, event("evt_dp_2", "charge.dispute.closed", won))).json()[
        "outcome"
    ] == "applied"
    async with app.state.db.sessions() as session:
        rows = [
            (e.kind, e.amount, e.stripe_dispute)
            for e in await session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.id))
        ]
    assert rows == [
        ("fee", -259, None),
        ("sale", 7900, None),
        ("dispute", -7900, "dp_1"),
        ("dispute_reversal", 7900, "dp_1"),
    ]
    history = await shop.call("GET", f"/v1/contracts/{sold['contract']['id']}/history", "support")
    assert {"disputed", "dispute_won"} <= {h["action"] for h in history["data"]}
    checked = await shop.check(serial=sold["serial"])
    assert (checked["covered"], checked["products"][0]["contracts"][0]["disputed"]) == (True, False)


async def test_a_dispute_won_before_its_opening_arrived_leaves_the_contract_undisputed(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Events come in any order: the opening, arriving after the close, does not flag it again."""
    sold = await shop.checkout("test-screen-guard")
    dispute = {
        "id": "dp_late",
        "object": "dispute",
        "amount": 7900,
        "currency": "usd",
        "payment_intent": sold["payment_intent"],
        "status": "won",
    }
    await deliver(client, event("evt_dpl_2", "charge.dispute.closed", dispute))
    late = await deliver(
        client, event("evt_dpl_1", "charge.dispute.created", {**dispute, "status": "needs_response"})
    )
    assert late.json()["outcome"] == "applied", late.text
    checked = await shop.check(serial=sold["serial"])
    assert (checked["covered"], checked["products"][0]["contracts"][0]["disputed"]) == (True, False)
    async with app.state.db.sessions() as session:  # its money, booked whatever the order
        rows = await session.execute(
            select(LedgerEntryRow.kind, LedgerEntryRow.amount).where(
                LedgerEntryRow.stripe_dispute == "dp_late"
            )
        )
        assert sorted(tuple(r) for r in rows) == [("dispute", -7900), ("dispute_reversal", 7900)]


async def test_a_lost_dispute_ends_cover_when_it_closed_and_stops_the_subscription(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    sold = await shop.checkout("test-monthly")
    contract_id = sold["contract"]["id"]
    [invoice] = app.state.gateway.invoices.values()
    intent = invoice.paying_intent
    async with app.state.db.sessions() as session, session.begin():  # as the invoice's payment links it
        await session.execute(
            update(ContractRow).where(ContractRow.id == contract_id).values(stripe_payment_intent_id=intent)
        )
    dispute = {
        "id": "dp_lost",
        "object": "dispute",
        "amount": 7900,
        "currency": "usd",
        "payment_intent": intent,
    }
    opened = dt.datetime.now(dt.UTC).replace(microsecond=0)
    closed = opened + dt.timedelta(days=9)
    await deliver(
        client,
        event(
            "evt_dp_open",
            "charge.dispute.created",
            {**dispute, "status": "needs_response"},
            int(opened.timestamp()),
        ),
    )
    lost = event(
        "evt_dp_lost", "charge.dispute.closed", {**dispute, "status": "lost"}, int(closed.timestamp())
    )
    assert (await deliver(client, lost)).json()["outcome"] == "applied"
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert contract["status"] == "chargeback"
    assert dt.datetime.fromisoformat(contract["coverage_periods"][-1]["end"]) == closed  # cut when it closed
    before = await shop.check(serial=sold["serial"], at=(closed - dt.timedelta(hours=1)).isoformat())
    after = await shop.check(serial=sold["serial"], at=(closed + dt.timedelta(hours=1)).isoformat())
    assert (before["covered"], after["covered"], after["reason"]) == (True, False, "chargeback")
    assert after["products"][0]["contracts"][0]["disputed"] is False
    assert jobs.STOP_SUBSCRIPTION in await queued_kinds(app)


async def test_a_payment_that_reaches_a_cancelled_contract_books_the_coverage_it_bought(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Cancelled first, paid after (the events crossed): the payment buys its period, cut at the
    cancellation like every other, and the ledger spreads the sale over that cut period only."""
    contract = await shop.sell("test-screen-guard", pay=False)
    cancelled_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=40)
    await shop.lifecycle(contract["id"], "cancel", f"cancel-{contract['id']}", at=cancelled_at)
    pi = {
        "id": "pi_late",
        "object": "payment_intent",
        "amount": 7900,
        "currency": "usd",
        "metadata": {"contract_id": contract["id"]},
    }
    response = await deliver(client, event("evt_late", "payment_intent.succeeded", pi))
    assert response.json()["outcome"] == "applied"
    view = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert view["status"] == "cancelled"
    [period] = view["coverage_periods"]
    async with app.state.db.sessions() as session:
        sale = await session.scalar(
            select(LedgerEntryRow).where(LedgerEntryRow.entry_key == "charge:pi_late")
        )
    assert sale is not None and sale.period_end == cancelled_at
    assert (sale.period_start.isoformat(), sale.period_end.isoformat()) == (
        dt.datetime.fromisoformat(period["start"]).isoformat(),
        dt.datetime.fromisoformat(period["end"]).isoformat(),
    )


async def pay_again(client: httpx.AsyncClient, contract_id: str, name: str, amount: int = 7900) -> None:
    """A second PaymentIntent made for a contract, succeeded, as Stripe tells of it."""
    intent = {
        "id": f"pi_{name}",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": amount,
        "currency": "usd",
        "latest_charge": f"ch_{name}",
        "metadata": {"contract_id": contract_id},
    }
    assert (
        await deliver(client, event(f"evt_{name}", "payment_intent.succeeded", intent))
    ).status_code == 200


def subscription_ended(subscription: str, contract_id: str, ended_at: int) -> dict[str, Any]:
    """A subscription as `customer.subscription.deleted` carries it: ended at the customer's
    request (or ours)."""
    return {
        "id": subscription,
        "object": "subscription",
        "status": "canceled",
        "metadata": {"contract_id": contract_id},
        "cancellation_details": {"reason": "cancellation_requested"},
        "ended_at": ended_at,
    }


async def queued_kinds(app: CoverlineApp) -> list[str]:
    async with app.state.db.sessions() as session:
        return [r[0] for r in await session.execute(text("SELECT entrypoint FROM pgqueuer ORDER BY id"))]


async def queued_jobs(app: CoverlineApp) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.db.sessions() as session:
        rows = await session.execute(text("SELECT entrypoint, payload FROM pgqueuer ORDER BY id"))
        return [(r[0], msgspec.json.decode(r[1])) for r in rows if r[0] == jobs.REFUND_UNWANTED]


async def test_a_second_invoice_for_a_paid_period_is_refunded_and_covers_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    before = (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["coverage_periods"]
    [invoice] = app.state.gateway.invoices.values()
    twin = {
        **msgspec.to_builtins(invoice),
        "id": "in_twin",
        "payments": {"data": [{"payment": {"payment_intent": "pi_twin"}}]},
    }
    response = await deliver(client, event("evt_twin", "invoice.paid", twin))
    assert response.json()["outcome"] == "applied"
    after = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert after["coverage_periods"] == before
    assert await queued_jobs(app) == [
        (
            jobs.REFUND_UNWANTED,
            {
                "contract_id": contract_id,
                "payment_intent": "pi_twin",
                "amount": 7900,
                "currency": "USD",
                "reason": "duplicate_payment",
            },
        )
    ]
    again = await deliver(
        client, event("evt_twin_again", "invoice.paid", twin)
    )  # another event, same invoice
    assert again.json()["outcome"] == "applied"
    assert len(await queued_jobs(app)) == 1  # booked before: not refunded twice
    async with app.state.db.sessions() as session:
        kinds = sorted(e.kind for e in await session.scalars(select(LedgerEntryRow)))
    assert kinds == ["duplicate_payment", "fee", "sale"]


async def test_a_payment_for_an_abandoned_contract_is_a_late_payment_refunded(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    result = await shop.checkout("test-screen-guard", card=None)  # the page never paid
    contract_id = result["contract"]["id"]
    await shop.lifecycle(contract_id, "abandon", "offer-expired")
    intent = app.state.gateway.payment_intents[result["payment_intent"]]
    paid = {**msgspec.to_builtins(intent), "status": "succeeded", "latest_charge": "ch_late"}
    response = await deliver(client, event("evt_late", "payment_intent.succeeded", paid))
    assert response.json()["outcome"] == "applied"
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert (contract["status"], contract["coverage_periods"]) == ("abandoned", [])
    [(_, refund)] = await queued_jobs(app)
    assert (refund["reason"], refund["payment_intent"]) == ("late_payment", result["payment_intent"])
    history = await shop.call("GET", f"/v1/contracts/{contract_id}/history", "support")
    assert "late_payment" in [h["action"] for h in history["data"]]


async def test_a_payment_finished_after_a_cancel_is_a_late_payment_refunded(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """3-D Secure finished after the contract was cancelled unpaid: the money buys nothing and
    goes back, where before it was booked as a sale on a contract no cancel could refund."""
    result = await shop.checkout("test-screen-guard", card=None)
    contract_id = result["contract"]["id"]
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support", json={})
    cancel = {"refund": quote["refund"]}
    await shop.call("POST", f"/v1/contracts/{contract_id}/cancel", "support", json=cancel)
    intent = app.state.gateway.payment_intents[result["payment_intent"]]
    paid = {**msgspec.to_builtins(intent), "status": "succeeded", "latest_charge": "ch_after_cancel"}
    finished = int(time.time()) + 1  # after the cancel
    response = await deliver(client, event("evt_after_cancel", "payment_intent.succeeded", paid, finished))
    assert response.json()["outcome"] == "applied"
    [(_, refund)] = await queued_jobs(app)
    assert (refund["reason"], refund["amount"]) == ("late_payment", intent.amount)
    async with app.state.db.sessions() as session:
        kinds = [e.kind for e in await session.scalars(select(LedgerEntryRow))]
    assert "sale" not in kinds and "late_payment" in kinds


def renewal_invoice(
    invoice: Any, invoice_id: str, start: dt.datetime, payment_intent: str | None = None
) -> dict[str, Any]:
    """`invoice`'s subscription billed again for the 30 days from `start`, paid by
    `payment_intent` where given (as the current API version lists an invoice's payments)."""
    span = {"start": int(start.timestamp()), "end": int((start + dt.timedelta(days=30)).timestamp())}
    renewal = {
        **msgspec.to_builtins(invoice),
        "id": invoice_id,
        "billing_reason": "subscription_cycle",
        "period_start": span["start"],
        "period_end": span["end"],
        "lines": {"object": "list", "data": [{"amount": 7900, "period": span}]},
    }
    if payment_intent is not None:
        renewal["payments"] = {"data": [{"payment": {"payment_intent": payment_intent}}]}
    return renewal


async def test_a_renewal_taken_as_the_customer_cancelled_is_refunded(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    [invoice] = app.state.gateway.invoices.values()
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support", json={})
    await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    renewal = renewal_invoice(invoice, "in_next_month", start)
    created = int(time.time()) - 5  # charged just before the cancel; its event came after it
    response = await deliver(client, event("evt_next_month", "invoice.paid", renewal, created))
    assert response.json()["outcome"] == "applied"
    [(_, refund)] = await queued_jobs(app)
    assert (refund["reason"], refund["amount"]) == ("late_payment", renewal["amount_paid"])
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert contract["status"] == "cancelled"
    assert all(p["start"] != start.isoformat() for p in contract["coverage_periods"])


async def test_a_renewal_paid_after_the_contract_lapsed_is_refunded_and_covers_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """The renewal failed, the subscription lapsed, then the customer paid the open invoice from
    its link: the money goes back, and the lapsed contract does not cover the month it paid for
    (it was booked as a renewal, its period added in full past the end)."""
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    [invoice] = app.state.gateway.invoices.values()
    await shop.lifecycle(contract_id, "lapse", "sub_x:ended")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    renewal = renewal_invoice(invoice, "in_after_lapse", start, "pi_after_lapse")
    response = await deliver(client, event("evt_after_lapse", "invoice.paid", renewal, int(time.time()) + 1))
    assert response.json()["outcome"] == "applied"
    [(_, refund)] = await queued_jobs(app)
    assert (refund["reason"], refund["payment_intent"]) == ("late_payment", "pi_after_lapse")
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert contract["status"] == "lapsed"
    assert len(contract["coverage_periods"]) == 1  # the month it paid at checkout
    later = (start + dt.timedelta(days=10)).isoformat()
    assert (await shop.check(contract_id=contract_id, at=later))["covered"] is False
    # Lapsed here, not by Stripe: its subscription is stopped, or it would charge every month.
    assert jobs.STOP_SUBSCRIPTION in await queued_kinds(app)


async def test_a_payment_intent_paid_after_the_term_expired_is_a_late_payment(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """A PaymentIntent naming the expired contract, paid after its end, has no period to judge by:
    it was kept, bought a period of no length, and was counted as earned at once."""
    contract_id = (await shop.checkout("test-monthly"))["contract"]["id"]
    ended = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=10)
    await shop.lifecycle(contract_id, "expire", f"term-{contract_id}", at=ended)
    await pay_again(client, contract_id, "after_expiry")  # its event: now, before the end
    later = {
        "id": "pi_after_expiry_late",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 7900,
        "currency": "usd",
        "latest_charge": "ch_after_expiry_late",
        "metadata": {"contract_id": contract_id},
    }
    paid = int((ended + dt.timedelta(hours=1)).timestamp())
    answer = await deliver(client, event("evt_after_expiry_late", "payment_intent.succeeded", later, paid))
    assert answer.json()["outcome"] == "applied"
    refunds = [(r["reason"], r["payment_intent"]) for _, r in await queued_jobs(app)]
    assert ("late_payment", "pi_after_expiry_late") in refunds


async def test_stripe_ending_the_subscription_we_stopped_keeps_the_contract_as_it_ended(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """A contract lapsed here, its subscription stopped after: Stripe's deletion ("cancellation
    requested") turned it into `cancelled`, moved its end and told every endpoint."""
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    lapsed = await shop.lifecycle(contract_id, "lapse", f"lapse-{contract_id}")
    [subscription] = app.state.gateway.subscriptions
    deleted = subscription_ended(subscription, contract_id, int(time.time()) + 60)
    told = await deliver(client, event("evt_stopped_after_lapse", "customer.subscription.deleted", deleted))
    assert told.json()["outcome"] == "applied"
    after = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert (after["status"], after["ended_at"]) == ("lapsed", lapsed["ended_at"])


async def test_the_last_instalment_paid_after_the_term_expired_buys_its_period_up_to_the_end(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Its period began before the end: the customer was covered for it, so it is booked, not
    refunded, and covers nothing past the end."""
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    [invoice] = app.state.gateway.invoices.values()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ended = now + dt.timedelta(days=45)
    await shop.lifecycle(contract_id, "expire", f"term-{contract_id}", at=ended)
    start = now + dt.timedelta(days=30)
    last = renewal_invoice(invoice, "in_last_instalment", start, "pi_last_instalment")
    paid_after = int((ended + dt.timedelta(hours=1)).timestamp())
    response = await deliver(client, event("evt_last_instalment", "invoice.paid", last, paid_after))
    assert response.json()["outcome"] == "applied"
    assert await queued_jobs(app) == []  # nothing to refund
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert contract["status"] == "expired"
    [_, bought] = contract["coverage_periods"]
    assert (dt.datetime.fromisoformat(bought["start"]), dt.datetime.fromisoformat(bought["end"])) == (
        start,
        ended,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ended_at", 10**15),
        ("ended_at", -(10**15)),
        ("ended_at", 2**63 - 1),
        ("ended_at", 0),
        ("cancel_at", 10**15),
    ],
)
async def test_a_signed_subscription_with_an_instant_out_of_range_is_malformed_and_changes_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, field: str, value: int
) -> None:
    """Stored as malformed and acknowledged, where the instant broke the handler (a 500 that
    Stripe would send again for days), or ended the contract in 1970, before it was sold."""
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    ended = {**subscription_ended("sub_out_of_range", contract_id, int(time.time())), field: value}
    response = await deliver(
        client, event(f"evt_range_{field}_{value}", "customer.subscription.deleted", ended)
    )
    assert (response.status_code, response.json()["outcome"]) == (200, "malformed")
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert (contract["status"], contract["ended_at"]) == ("active", None)


@pytest.mark.parametrize(("amount", "currency"), [(50, "eur"), (50, "usd"), (None, "eur")])
async def test_a_payment_that_is_not_the_contracts_price_buys_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, amount: int | None, currency: str
) -> None:
    """A PaymentIntent made elsewhere that names a pending contract in its metadata: another
    currency, or another amount, is refunded, and the contract stays unpaid for its own."""
    result = await shop.checkout("test-screen-guard", card=None)
    contract_id = result["contract"]["id"]
    own = app.state.gateway.payment_intents[result["payment_intent"]]
    foreign = {
        "id": "pi_made_elsewhere",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": own.amount if amount is None else amount,
        "currency": currency,
        "latest_charge": "ch_made_elsewhere",
        "metadata": {"contract_id": contract_id},
    }
    response = await deliver(client, event("evt_foreign", "payment_intent.succeeded", foreign))
    assert response.json()["outcome"] == "applied"
    [(_, refund)] = await queued_jobs(app)
    assert (refund["reason"], refund["payment_intent"]) == ("mismatched_payment", "pi_made_elsewhere")
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert (contract["status"], contract["coverage_periods"]) == ("pending_payment", [])
    history = await shop.call("GET", f"/v1/contracts/{contract_id}/history", "support")
    [entry] = [h for h in history["data"] if h["action"] == "mismatched_payment"]
    assert entry["changes"]["price"] == {"amount": own.amount, "currency": own.currency.upper()}


async def test_an_invoice_in_another_currency_buys_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    result = await shop.checkout("test-monthly")
    [invoice] = app.state.gateway.invoices.values()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    next_period = {"start": int(start.timestamp()), "end": int((start + dt.timedelta(days=30)).timestamp())}
    renewal = {
        **msgspec.to_builtins(invoice),
        "id": "in_in_euros",
        "billing_reason": "subscription_cycle",
        "currency": "eur",
        "amount_paid": 1,
        "period_start": int(start.timestamp()),
        "period_end": int((start + dt.timedelta(days=30)).timestamp()),
        "lines": {"object": "list", "data": [{"amount": 7900, "period": next_period}]},
    }
    response = await deliver(client, event("evt_in_euros", "invoice.paid", renewal))
    assert response.json()["outcome"] == "applied"
    [(_, refund)] = await queued_jobs(app)
    assert refund["reason"] == "mismatched_payment"
    contract = await shop.call("GET", f"/v1/contracts/{result['contract']['id']}", "support")
    assert len(contract["coverage_periods"]) == 1


async def test_the_gateway_is_asked_with_no_transaction_open(
    shop: Shop,
    app: CoverlineApp,
    client: httpx.AsyncClient,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handlers that need Stripe's current objects get them before the event's transaction
    opens: while Stripe answers, no connection of ours sits in a transaction."""
    result = await shop.checkout("test-monthly")
    gateway = app.state.gateway
    [invoice] = gateway.invoices.values()
    asked = gateway.invoice
    open_transactions: list[int] = []

    async def observed(invoice_id: str) -> Any:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            open_transactions.append(
                await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            )
        finally:
            await connection.close()
        return await asked(invoice_id)

    monkeypatch.setattr(gateway, "invoice", observed)
    failed = {
        **msgspec.to_builtins(invoice),
        "id": "in_renewal",
        "status": "open",
        "billing_reason": "subscription_cycle",
    }
    response = await deliver(client, event("evt_renewal_failed", "invoice.payment_failed", failed))
    assert response.status_code == 200
    assert open_transactions == [0]
    assert (await shop.call("GET", f"/v1/contracts/{result['contract']['id']}", "support"))[
        "status"
    ] == "past_due"


async def test_an_expired_first_invoice_abandons_and_an_earlier_attempts_subscription_ends_nothing(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    gateway = app.state.gateway
    request, _ = await shop.checkout_request("test-monthly", card="pm_card_chargeDeclined")
    declined = await shop.call("POST", "/v1/checkouts", "checkout", json=request)
    paid = await shop.call(
        "POST", "/v1/checkouts", "checkout", json={**request, "payment_method": "pm_card_visa"}
    )
    assert (declined["attempt"], paid["attempt"], paid["payment_status"]) == (1, 2, "active")
    first = {
        **msgspec.to_builtins(gateway.subscriptions[declined["subscription"]]),
        "status": "incomplete_expired",
    }
    response = await deliver(client, event("evt_first_expired", "customer.subscription.updated", first))
    assert (
        response.json()["outcome"] == "ignored"
    )  # the earlier attempt's: the contract is paid by the second
    contract_id = paid["contract"]["id"]
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "active"

    request, _ = await shop.checkout_request("test-monthly", card="pm_card_chargeDeclined")
    never = await shop.call("POST", "/v1/checkouts", "checkout", json=request)
    expired = {
        **msgspec.to_builtins(gateway.subscriptions[never["subscription"]]),
        "status": "incomplete_expired",
    }
    response = await deliver(client, event("evt_expired", "customer.subscription.updated", expired))
    assert response.json()["outcome"] == "applied"
    assert (await shop.call("GET", f"/v1/contracts/{never['contract']['id']}", "support"))[
        "status"
    ] == "abandoned"


async def test_a_renewal_needing_authentication_is_in_the_history_with_stripes_link(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    sold = await shop.checkout("test-monthly")
    [invoice] = app.state.gateway.invoices.values()
    renewal = {
        **msgspec.to_builtins(invoice),
        "id": "in_needs_3ds",
        "status": "open",
        "billing_reason": "subscription_cycle",
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/in_needs_3ds",
    }
    response = await deliver(client, event("evt_action", "invoice.payment_action_required", renewal))
    assert response.json()["outcome"] == "applied"
    history = await shop.call("GET", f"/v1/contracts/{sold['contract']['id']}/history", "support")
    [entry] = [h for h in history["data"] if h["action"] == "payment_action_required"]
    assert entry["changes"]["hosted_invoice_url"] == renewal["hosted_invoice_url"]


@pytest.mark.parametrize(
    "order", [("pending", "failed"), ("failed", "pending"), ("canceled",), ("pending", "failed!")]
)
async def test_a_refund_that_fails_is_booked_with_its_reversal_in_any_order(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, order: tuple[str, ...]
) -> None:
    """Stripe refunds can fail after they are made: the money went out, then came back."""
    sold = await shop.checkout("test-screen-guard")
    refund_id = f"re_fail_{secrets.token_hex(4)}"
    refund = {"id": refund_id, "amount": 1000, "currency": "usd", "payment_intent": sold["payment_intent"]}
    for n, status in enumerate(order):
        # Stripe says a refund failed in refund.updated, and (since 2024-10-28) in refund.failed.
        kind = {"pending": "refund.created", "failed!": "refund.failed"}.get(status, "refund.updated")
        status = status.rstrip("!")
        answer = await deliver(client, event(f"evt_{refund_id}_{n}", kind, {**refund, "status": status}))
        assert answer.json()["outcome"] == "applied", answer.text
    async with app.state.db.sessions() as session:
        rows = await session.execute(
            select(LedgerEntryRow.kind, LedgerEntryRow.amount, LedgerEntryRow.contract_id)
            .where(LedgerEntryRow.stripe_refund == refund_id)
            .order_by(LedgerEntryRow.id)
        )
        booked = [tuple(row) for row in rows]
    contract_id = sold["contract"]["id"]
    assert booked == [("refund", -1000, contract_id), ("refund_reversal", 1000, contract_id)]
    told = await shop.call("GET", "/v1/events", "admin", params={"contract_id": contract_id})
    refunds = sorted(e["type"] for e in told["data"] if e["type"].startswith("refund."))
    assert refunds == ["refund.created", "refund.failed"]  # each once: the endpoints know it failed
    # The customer is still owed it: the contract's history says so, once, for finance.
    history = await shop.call("GET", f"/v1/contracts/{contract_id}/history", "support")
    owed = [h for h in history["data"] if h["action"] == "refund_outstanding"]
    assert len(owed) == 1, history
    # Held for the customer, never earned: what came back stays deferred until it is paid out.
    [position] = (await shop.call("GET", "/v1/finance/deferred-revenue", "finance"))["data"]
    assert position["deferred"]["amount"] >= 1000, position


async def test_a_mismatched_payment_does_not_become_the_contracts_payment_intent(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """A contract with no PaymentIntent of its own yet (a subscription, a hosted page): the lock
    names the event's one, and a mismatch takes that back, so the contract's own payment, its
    refunds and disputes still find it."""
    contract = await pending_subscription(shop, app)
    foreign = {
        "id": "pi_foreign_eur",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 50,
        "currency": "eur",
        "metadata": {"contract_id": contract["id"]},
    }
    assert (
        await deliver(client, event("evt_foreign_eur", "payment_intent.succeeded", foreign))
    ).status_code == 200
    async with app.state.db.sessions() as session:
        named = await session.scalar(
            select(ContractRow.stripe_payment_intent_id).where(ContractRow.id == contract["id"])
        )
    assert named is None


async def test_an_open_invoice_paid_after_the_cancel_is_a_late_payment_however_early_its_period(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Its period began before the cancel (the past-due invoice, paid from its link afterwards):
    paid after the end, it bought nothing, and goes back."""
    result = await shop.checkout("test-monthly")
    contract_id = result["contract"]["id"]
    [invoice] = app.state.gateway.invoices.values()
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support", json={})
    await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    span = {"start": int(start.timestamp()), "end": int((start + dt.timedelta(days=30)).timestamp())}
    open_one = {
        **msgspec.to_builtins(invoice),
        "id": "in_paid_late",
        "billing_reason": "subscription_cycle",
        "period_start": span["start"],
        "period_end": span["end"],
        "lines": {"object": "list", "data": [{"amount": 7900, "period": span}]},
    }
    paid_at = int(time.time()) + 2
    assert (
        await deliver(client, event("evt_paid_late", "invoice.paid", open_one, paid_at))
    ).status_code == 200
    [(_, refund)] = await queued_jobs(app)
    assert refund["reason"] == "late_payment"
