"""Inputs a stranger or a careless client sends: each gets a 4xx problem, never a 500, and a
correctly signed Stripe event that cannot be read is answered 200 and recorded as malformed."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select

from api.app import CoverlineApp
from billing.tables import StripeEventRow
from billing.webhooks.signatures import sign
from tests.api.shop import Shop
from tests.conftest import WEBHOOK_SECRETS, Keys


async def post_product(shop: Shop, **changed: object) -> httpx.Response:
    """A product registration for a new customer, with these fields changed."""
    customer = await shop.customer()
    body = {
        "customer_id": customer["id"],
        "sku": "TV-1",
        "category": "tv",
        "price": {"amount": 1000, "currency": "USD"},
        "purchase_date": "2026-01-01",
        "serial": f"PD{secrets.token_hex(4)}",
        **changed,
    }
    return await shop.client.post("/v1/products", json=body, headers=shop.keys.auth("checkout"))


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or range(400, 500)), (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == response.status_code
    return problem


@pytest.mark.parametrize(
    "signature",
    [
        "t=1,v1=é",
        "t={now},v1=\u00e9\u00e9\u00e9",
        "t={now},v1=" + "ß" * 64,
        "t=1e3,v1=ab",
        "t=99999999999999999999999,v1=ab",
    ],
)
async def test_a_malformed_stripe_signature_is_refused_without_a_key(
    client: httpx.AsyncClient, signature: str
) -> None:
    response = await client.post(
        "/v1/stripe/webhooks",
        content=b'{"id":"evt_1"}',
        headers={
            "Stripe-Signature": signature.replace("{now}", str(int(time.time()))).encode(),
            "Content-Type": "application/json",
        },
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("depth", [200, 1_000, 5_000])
async def test_deeply_nested_json_is_refused(client: httpx.AsyncClient, keys: Keys, depth: int) -> None:
    body = b'{"product":' + b"[" * depth + b"]" * depth + b"}"
    response = await client.post(
        "/v1/offers", content=body, headers={**keys.auth("publishable"), "Content-Type": "application/json"}
    )
    assert_problem(response)


@pytest.mark.parametrize("amount", [2**63, -(2**63) - 1, 10**30])
async def test_amounts_beyond_64_bits_are_refused(shop: Shop, amount: int) -> None:
    response = await post_product(shop, price={"amount": amount, "currency": "USD"})
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "9999-12-31T23:59:59Z",
    ],
)
async def test_instants_at_the_ends_of_the_calendar_are_answered_or_refused(
    shop: Shop, keys: Keys, at: str
) -> None:
    contract = await shop.sell()
    check = await shop.client.get(
        "/v1/entitlements", params={"serial": contract["serial"], "at": at}, headers=keys.auth("support")
    )
    assert check.status_code < 500, check.text
    if check.status_code >= 400:
        assert_problem(check)
    for report in ("/v1/finance/deferred-revenue", "/v1/finance/renewals", "/v1/finance/ledger"):
        params = {"at": at} if report.endswith("revenue") else {"from": at, "to": at}
        response = await shop.client.get(report, params=params, headers=keys.auth("finance"))
        assert response.status_code < 500, (report, response.text)
        if response.status_code >= 400:
            assert_problem(response)


@pytest.mark.parametrize(
    "report",
    [
        "/v1/finance/ledger",
        "/v1/finance/ledger.csv",
        "/v1/finance/renewals",
        "/v1/finance/claims-cost",
        "/v1/finance/loss-ratio",
        "/v1/finance/reconciliation",
    ],
)
async def test_a_range_whose_from_is_not_before_its_to_is_refused_by_every_report(
    client: httpx.AsyncClient, keys: Keys, report: str
) -> None:
    """Not answered as an empty report: a caller who swapped the two learns it."""
    for since, until in (("2026-11-01T00:00:00Z", "2026-10-01T00:00:00Z"), ("2026-11-01T00:00:00Z",) * 2):
        response = await client.get(report, params={"from": since, "to": until}, headers=keys.auth("finance"))
        assert_problem(response, 422)
        assert [error["field"] for error in response.json()["errors"]] == ["from"], report


@pytest.mark.parametrize("path", ["/v1/customers/cus%00x", "/v1/contracts/%00", "/v1/plans/a%00b"])
async def test_a_nul_in_a_path_is_refused(client: httpx.AsyncClient, keys: Keys, path: str) -> None:
    assert_problem(await client.get(path, headers=keys.auth("admin")), 400)


async def test_a_literal_backslash_u0000_in_text_is_text(shop: Shop) -> None:
    """Six characters a person typed, escaped in JSON as `\\\\u0000`, are not a NUL."""
    response = await shop.client.post(
        "/v1/customers",
        content=b'{"name": "C:\\\\u0000 path", "country": "US", "time_zone": "America/Chicago"}',
        headers={**shop.keys.auth("checkout"), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "C:\\u0000 path"


async def test_a_real_nul_in_text_is_refused(shop: Shop) -> None:
    response = await shop.client.post(
        "/v1/customers",
        content=b'{"name": "A\\u0000B", "country": "US", "time_zone": "America/Chicago"}',
        headers={**shop.keys.auth("checkout"), "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def signed(raw: bytes) -> dict[str, str]:
    return {
        "Stripe-Signature": sign(raw, WEBHOOK_SECRETS[0], int(time.time())),
        "Content-Type": "application/json",
    }


def envelope(event_id: str, event_type: str, obj: object) -> bytes:
    return msgspec.json.encode(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    )


async def stored_outcome(app: CoverlineApp, event_id: str) -> str | None:
    async with app.state.db.sessions() as session:
        return await session.scalar(select(StripeEventRow.outcome).where(StripeEventRow.id == event_id))


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        (  # Stripe's refund always has a currency; this one has none
            "charge.refunded",
            {
                "id": "ch_1",
                "object": "charge",
                "payment_intent": "pi_x",
                "refunds": {"data": [{"id": "re_1", "amount": 100}]},
            },
        ),
        ("payment_intent.succeeded", "not an object"),
        ("charge.refunded", {"id": "re_2", "object": "refund", "amount": "a lot", "currency": "usd"}),
        # Past what the ledger keeps: a currency it cannot book or a column cannot hold, an id
        # past its column, an amount that is negative or past what sums in a bigint.
        ("refund.created", {"id": "re_3", "amount": 100, "currency": "zzz"}),
        ("refund.created", {"id": "re_4", "amount": 100, "currency": "usdx"}),
        ("refund.created", {"id": "re_" + "5" * 300, "amount": 100, "currency": "usd"}),
        # Within a ledger key's column, but not with its prefix, nor in a fact's reference.
        ("refund.created", {"id": "re_" + "5" * 200, "amount": 100, "currency": "usd"}),
        ("payment_intent.succeeded", {"id": "pi_" + "6" * 130, "amount": 100, "currency": "usd"}),
        ("refund.created", {"id": "re_6", "amount": -5000, "currency": "usd"}),
        ("charge.dispute.created", {"id": "dp_7", "amount": 2**63, "currency": "usd", "status": "x"}),
        (
            "charge.refunded",
            {
                "id": "ch_8",
                "amount": 100,
                "currency": "usd",
                "refunds": {"data": [{"id": "re_8", "amount": 100, "currency": "xyz"}]},
            },
        ),
    ],
)
async def test_a_signed_event_we_cannot_read_is_acknowledged_and_recorded_as_malformed(
    client: httpx.AsyncClient, app: CoverlineApp, event_type: str, obj: object
) -> None:
    event_id = f"evt_malformed_{secrets.token_hex(4)}"
    raw = envelope(event_id, event_type, obj)
    response = await client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "malformed"
    assert (await stored_outcome(app, event_id) or "").startswith("malformed: ")
    again = await client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert again.json()["outcome"] == "duplicate"


async def test_an_event_dated_before_stripe_is_malformed(
    client: httpx.AsyncClient, app: CoverlineApp
) -> None:
    """`created: 1` would book a payment in 1970."""
    event_id = f"evt_1970_{secrets.token_hex(4)}"
    raw = msgspec.json.encode(
        {"id": event_id, "type": "refund.created", "created": 1, "data": {"object": {"id": "re_9"}}}
    )
    response = await client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert response.json()["outcome"] == "malformed", response.text
    kept = await stored_outcome(app, response.json()["event_id"])  # under its bytes' digest
    assert "created" in (kept or "")


async def test_a_failure_after_the_handler_is_not_taken_for_a_malformed_event(
    shop: Shop, app: CoverlineApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what the handler reads can make an event malformed. A ValueError while the unit of
    work finishes (a bug of ours, say) stores nothing and fails the delivery, so that Stripe
    delivers it again and it is applied once the fault is gone."""
    from entitlements.store.unit_of_work import UnitOfWork

    contract = await shop.sell(pay=False)
    event_id = f"evt_after_{secrets.token_hex(4)}"
    intent = {
        "id": f"pi_{secrets.token_hex(6)}",
        "object": "payment_intent",
        "amount": contract["price"]["amount"],
        "currency": contract["price"]["currency"].lower(),
        "metadata": {"contract_id": contract["id"]},
    }
    raw = envelope(event_id, "payment_intent.succeeded", intent)
    finish = UnitOfWork.before_commit
    faulty = [True]  # through the first delivery, each try of it (ahead of the app, then in it)

    async def failing(self: UnitOfWork) -> None:
        if faulty[0]:
            raise ValueError("a fault of ours")
        await finish(self)

    monkeypatch.setattr(UnitOfWork, "before_commit", failing)
    response = await shop.client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert response.status_code >= 500, response.text
    assert await stored_outcome(app, event_id) is None  # nothing kept: Stripe will send it again
    faulty[0] = False
    again = await shop.client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert again.json()["outcome"] == "applied", again.text
    assert (await shop.call("GET", f"/v1/contracts/{contract['id']}", "support"))["status"] == "active"


async def test_a_malformed_event_leaves_nothing_of_what_its_handler_began(
    shop: Shop, app: CoverlineApp
) -> None:
    """The amount is missing: the event is refused whole where it is decoded, before its handler
    writes anything, and the contract stays unpaid."""
    contract = await shop.sell(pay=False)
    event_id = f"evt_no_amount_{secrets.token_hex(4)}"
    intent = {
        "id": f"pi_{secrets.token_hex(6)}",
        "object": "payment_intent",
        "currency": "usd",
        "metadata": {"contract_id": contract["id"]},
    }
    raw = envelope(event_id, "payment_intent.succeeded", intent)
    response = await shop.client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert response.json()["outcome"] == "malformed", response.text
    assert (await shop.call("GET", f"/v1/contracts/{contract['id']}", "support"))[
        "status"
    ] == "pending_payment"
    assert (await shop.check(serial=contract["serial"]))["covered"] is False


async def test_signed_bytes_that_are_not_an_event_are_kept_under_their_digest(
    client: httpx.AsyncClient, app: CoverlineApp
) -> None:
    raw = b'{"id": 5, "type": ["no"]}'
    response = await client.post("/v1/stripe/webhooks", content=raw, headers=signed(raw))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["outcome"], body["event_id"].startswith("evt_unreadable_")) == ("malformed", True)
    assert (await stored_outcome(app, body["event_id"]) or "").startswith("malformed: ")


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/products", "/v1/claims", "/v1/entitlements/check"])
async def test_a_missing_body_is_named_as_such(shop: Shop, path: str) -> None:
    response = await shop.client.post(path, headers=shop.keys.auth("admin"))
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "body", "message": "this operation takes a JSON body; none was sent"}
    ]


async def test_numbers_in_strings_are_not_numbers(shop: Shop) -> None:
    response = await post_product(shop, price={"amount": "100", "currency": "USD"})
    assert_problem(response, 422)


async def test_an_instant_in_a_body_needs_rfc_3339_with_its_offset(shop: Shop) -> None:
    contract = await shop.sell(pay=False)
    for at in (1_790_000_000, "2026-11-01T10:00:00", "2026-11-01"):
        response = await shop.client.post(
            f"/v1/contracts/{contract['id']}/lifecycle",
            json={"action": "payment", "reference": f"r-{secrets.token_hex(3)}", "at": at},
            headers=shop.keys.auth("admin"),
        )
        assert_problem(response, 422)


@pytest.mark.parametrize("purchase_date", ["0001-01-01", "1989-12-31", "2999-01-01"])
async def test_a_purchase_date_outside_1990_to_tomorrow_is_refused(shop: Shop, purchase_date: str) -> None:
    response = await post_product(shop, purchase_date=purchase_date)
    assert_problem(response, 422)


@pytest.mark.parametrize("country", ["XX", "ZZ", "EU"])
async def test_a_country_that_is_not_iso_3166_is_refused(shop: Shop, country: str) -> None:
    response = await shop.client.post(
        "/v1/customers", json={"name": "Ana", "country": country}, headers=shop.keys.auth("checkout")
    )
    assert_problem(response, 422)


@pytest.mark.parametrize("path", ["/v1/entitlements", "/v1/entitlements/", "/v1//entitlements"])
async def test_a_query_parameter_given_twice_is_refused_naming_it(shop: Shop, keys: Keys, path: str) -> None:
    """However the path is slashed: the router serves each of them."""
    response = await shop.client.get(f"{path}?serial=AAA111&serial=BBB222", headers=keys.auth("support"))
    problem = assert_problem(response, 400)
    assert "serial" in problem["detail"]


@pytest.mark.parametrize("path", ["/v1/finance/ledger", "/v1/finance/ledger/", "/v1//finance/ledger/"])
async def test_an_unknown_query_parameter_is_refused_however_the_path_is_slashed(
    shop: Shop, keys: Keys, path: str
) -> None:
    response = await shop.client.get(f"{path}?contract_idd=x", headers=keys.auth("finance"))
    assert "contract_idd" in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize("limit", ["1e2", "100.0", "%C2%B2", "+5", " 5"])
async def test_a_whole_number_in_a_query_is_written_in_ascii_digits(
    shop: Shop, keys: Keys, limit: str
) -> None:
    """As a body's numbers are: the app alone would read `1e2` and `100.0` as 100."""
    response = await shop.client.get(f"/v1/finance/ledger?limit={limit}", headers=keys.auth("finance"))
    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["query.limit"]


async def test_a_whole_number_in_a_query_is_still_bounded_by_the_operation(shop: Shop, keys: Keys) -> None:
    for limit, status in (("4", 200), ("0", 422), ("-1", 422), ("9" * 30, 422)):
        response = await shop.client.get(f"/v1/finance/ledger?limit={limit}", headers=keys.auth("finance"))
        assert response.status_code == status, (limit, response.text)


async def test_answers_carry_nosniff_and_customer_data_is_not_stored_by_caches(
    shop: Shop, keys: Keys
) -> None:
    contract = await shop.sell()
    check = await shop.client.get(
        "/v1/entitlements", params={"serial": contract["serial"]}, headers=keys.auth("support")
    )
    customer = await shop.client.get(
        f"/v1/customers/{contract['customer']['id']}", headers=keys.auth("support")
    )
    problem = await shop.client.get("/v1/customers/nobody", headers=keys.auth("support"))
    for response in (check, customer, problem):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    plans = await shop.client.get("/v1/plans", headers=keys.auth("publishable"))
    assert plans.headers["x-content-type-options"] == "nosniff"


async def test_answers_in_the_callers_language_vary_on_it(shop: Shop, keys: Keys) -> None:
    plans = await shop.client.get(
        "/v1/plans", headers={**keys.auth("publishable"), "Origin": "https://shop.example"}
    )
    check = await shop.client.get(
        "/v1/entitlements", params={"serial": "NOPE123"}, headers=keys.auth("support")
    )
    for response in (plans, check):
        assert "accept-language" in response.headers["vary"].lower(), response.headers


async def test_a_reference_is_the_same_however_its_accents_were_typed(shop: Shop) -> None:
    """`Café` composed or decomposed is one reference: one claim, one payment. A reference that is
    blank once trimmed, or carries direction marks, is refused."""
    contract = await shop.sell(pay=False)
    composed, decomposed = "Café-1 ", "Cafe\u0301-1"
    first = await shop.claim(contract_id=contract["id"], reference=composed, expect=201)
    assert first["reference"] == "Café-1"
    contract = await shop.lifecycle(contract["id"], "payment", composed)
    again = await shop.claim(contract_id=contract["id"], reference=decomposed, expect=201)
    assert again["id"] == first["id"]
    await shop.lifecycle(contract["id"], "payment", decomposed)
    periods = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert len(periods["coverage_periods"]) == 1  # one payment, one period
    for bad in (" ", "a\u202eb"):
        problem = await shop.claim(contract_id=contract["id"], reference=bad, expect=422)
        assert problem["errors"][0]["field"] == "reference"
        by_hand = await shop.client.post(
            f"/v1/contracts/{contract['id']}/lifecycle",
            json={"action": "payment", "reference": bad},
            headers=shop.keys.auth("admin"),
        )
        assert assert_problem(by_hand, 422)["errors"][0]["field"] == "reference"


async def test_an_upfront_term_is_paid_once_by_hand_too(shop: Shop) -> None:
    """A second payment recorded by hand on an upfront contract is refused, as Stripe's second
    payment is refunded: it would otherwise buy a second term."""
    contract = await shop.sell()  # upfront, paid
    second = await shop.client.post(
        f"/v1/contracts/{contract['id']}/lifecycle",
        json={"action": "payment", "reference": "another-payment"},
        headers=shop.keys.auth("admin"),
    )
    assert assert_problem(second, 409)["detail"].startswith("this contract's term is paid already")
    after = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert len(after["coverage_periods"]) == 1
    again = await shop.lifecycle(contract["id"], "payment", f"pay-{contract['id']}")  # the same one
    assert len(again["coverage_periods"]) == 1


@pytest.mark.parametrize("action", ["cancel", "lapse", "payment"])
async def test_nothing_happens_to_a_contract_before_its_sale(shop: Shop, action: str) -> None:
    contract = await shop.sell(pay=False)
    answer = await shop.client.post(
        f"/v1/contracts/{contract['id']}/lifecycle",
        json={"action": action, "reference": f"early-{action}", "at": "1900-01-01T00:00:00Z"},
        headers=shop.keys.auth("admin"),
    )
    assert assert_problem(answer, 422)["errors"][0]["field"] == "at"
    after = await shop.call("GET", f"/v1/contracts/{contract['id']}", "support")
    assert (after["status"], after["ended_at"]) == ("pending_payment", None)


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/health", None),
        ("/v1/plans", "support"),
        ("/v1/entitlements?serial=X1", "support"),
    ],
)
async def test_head_answers_what_get_would_without_a_body(
    client: httpx.AsyncClient, keys: Keys, path: str, who: str | None
) -> None:
    """A load balancer checks health with HEAD: every path answered it 405."""
    headers = keys.auth(who) if who else {}
    got, head = [await client.request(method, path, headers=headers) for method in ("GET", "HEAD")]
    assert (head.status_code, head.content) == (got.status_code, b"")
    assert head.headers.get("content-type") == got.headers.get("content-type")
    assert head.headers.get("content-length") == got.headers.get("content-length")


async def test_head_on_a_path_with_no_get_is_405_and_options_names_head_beside_get(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.head("/v1/stripe/webhooks")).status_code == 405
    allow = (await client.options("/health")).headers["allow"]
    assert {"GET", "HEAD"} <= {method.strip() for method in allow.split(",")}
    # Not a page's GET that does something: the portal's link opens a session.
    assert (await client.head("/portal/some-token")).status_code == 405
    assert "HEAD" not in (await client.options("/portal/some-token")).headers["allow"]
    for page in ("/console/sign-in", "/docs"):
        got, head = await client.get(page), await client.head(page)
        assert (head.status_code, head.content) == (got.status_code, b"")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/finance/ledger?to=1899-12-31", "to"),
        ("/v1/finance/renewals?from=yesterday", "from"),
        ("/v1/finance/deferred-revenue?as_of=2026-11-29", "as_of"),
        ("/v1/entitlements?serial=X1&at=2026-11-29", "at"),
    ],
)
async def test_an_instant_that_does_not_read_is_named_as_the_caller_sent_it(
    client: httpx.AsyncClient, keys: Keys, path: str, name: str
) -> None:
    """The problem named `query.until` for `to`, and quoted the pattern's regular expression."""
    scope = "support" if path.startswith("/v1/entitlements") else "finance"
    problem = (await client.get(path, headers=keys.auth(scope))).json()
    assert problem["status"] == 422, problem
    [error] = problem["errors"]
    assert error["field"] == f"query.{name}"
    assert "regex" not in error["message"] and f"`{name}`" in error["message"], error


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Encoding": "br"},
        {"Content-Encoding": "x-evil"},
        {"Content-Encoding": "gzip"},
        {"Content-Type": "application/json; charset=utf-16"},
        {"Content-Type": "application/json; charset=latin-1"},
    ],
)
async def test_a_body_in_a_coding_or_charset_not_read_is_415(
    client: httpx.AsyncClient, keys: Keys, headers: dict[str, str]
) -> None:
    """It was read as plain UTF-8 whatever it said (a customer made from a body marked br)."""
    body = b'{"name": "Coded Customer", "email": "coded@example.com", "country": "SE"}'
    sent = {"Content-Type": "application/json", **headers, **keys.auth("support")}
    answer = await client.post("/v1/customers", content=body, headers=sent)
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    plain = {
        "Content-Type": "application/json; charset=us-ascii",
        "Content-Encoding": "identity",
        **keys.auth("support"),
    }
    assert (await client.post("/v1/customers", content=body, headers=plain)).status_code == 201


@pytest.mark.parametrize("name", ["Idempotency-Key", "Authorization", "Content-Type"])
async def test_a_header_of_one_value_sent_twice_is_400(
    client: httpx.AsyncClient, keys: Keys, name: str
) -> None:
    """Two Idempotency-Keys: the first won, so one key replayed the request and the other made a
    second customer."""
    values = {
        "Idempotency-Key": ("key-a", "key-b"),
        "Authorization": (keys.auth("support")["Authorization"], keys.auth("admin")["Authorization"]),
        "Content-Type": ("application/json", "text/plain"),
    }[name]
    headers = [(name, value) for value in values]
    if name != "Authorization":
        headers.append(("Authorization", keys.auth("support")["Authorization"]))
    if name != "Content-Type":
        headers.append(("Content-Type", "application/json"))
    body = b'{"name": "Twice Told", "country": "SE"}'
    answer = await client.post("/v1/customers", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert name.lower() in answer.json()["detail"]
    # The same value twice (a proxy may repeat a header) says one thing.
    same = [(n, v) for n, v in headers if n != name] + [(name, values[0])] * 2
    assert (await client.post("/v1/customers", content=body, headers=same)).status_code != 400


@pytest.mark.parametrize("field", ["email", "phone", "locale", "country", "time_zone"])
async def test_an_empty_field_in_a_customer_patch_is_named_not_taken_for_no_change(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, field: str
) -> None:
    """`{"phone": ""}` answered 200 and kept the old phone, as if the field were left out."""
    customer = await shop.customer(country="SE", locale="sv", phone="+46701234567")
    answer = await client.patch(
        f"/v1/customers/{customer['id']}", json={field: ""}, headers=keys.auth("support")
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].removeprefix("body.") == field
    assert (await shop.call("GET", f"/v1/customers/{customer['id']}", "support"))[field] == customer[field]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"lookups": [{"serial": "\\ud800"}]}', "surrogate"),
        (b'{"lookups": [{"serial": "AB\\uDBFFx"}]}', "surrogate"),
        (b"  \n ", "blank"),
    ],
)
async def test_a_body_that_is_no_json_text_is_said_as_what_it_is(
    client: httpx.AsyncClient, keys: Keys, body: bytes, said: str
) -> None:
    """Both were answered "Input data was truncated", naming nothing."""
    answer = await client.post(
        "/v1/entitlements/check",
        content=body,
        headers={"Content-Type": "application/json", **keys.auth("support")},
    )
    assert answer.status_code == 400, answer.text
    assert said in answer.json()["detail"]


async def test_an_escaped_backslash_before_u_d800_is_text_not_half_a_pair(shop: Shop) -> None:
    response = await shop.client.post(
        "/v1/customers",
        content=b'{"name": "C:\\\\ud800 path", "country": "SE"}',
        headers={"Content-Type": "application/json", **shop.keys.auth("support")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "C:\\ud800 path"
