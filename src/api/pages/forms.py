"""What the console's and the portal's forms say, read into the use cases' own inputs: a claim,
and the refund a cancellation accepts. A field that does not read is a 422 page naming it."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import InvalidOperation

from entitlements.catalog import CoverageKind
from entitlements.claims.schemas import ClaimInput
from entitlements.errors import InvalidInput
from entitlements.identifiers import ascii_digits
from entitlements.money import Money


def typed_amount(typed: str) -> str:
    """An amount as people type it in a form: a decimal comma (1200,50 in Swedish or
    Vietnamese) is a decimal point."""
    return typed.strip().replace(",", ".", 1) if typed.count(",") == 1 and "." not in typed else typed.strip()


def form_reference(source: str) -> str:
    """A claim form's own reference, made when the form is shown and posted with it: the form
    sent twice (a double click, a retry on a slow line) is one claim, as the API's references
    make it."""
    return f"{source}-{secrets.token_hex(10)}"


def claim_input(
    form: dict[str, str], *, source: str, contract_id: str, currency: str, customer_id: str | None = None
) -> ClaimInput:
    """A claim filed from a page (`source`: console or portal), on the contract it was filed
    from, under the form's reference, its cost in the contract's currency (major units, as
    people type it)."""
    reference = form.get("reference", "")
    if not re.fullmatch(rf"{source}-[0-9a-f]{{20}}", reference):  # a form from before they carried one
        reference = form_reference(source)
    try:
        kind = CoverageKind(form.get("incident_kind", ""))
    except ValueError:
        raise InvalidInput("choose what happened from the list", field="incident_kind") from None
    typed_day = form.get("incident_date", "")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", typed_day):  # as the API reads one (not 20261128)
            raise ValueError(typed_day)
        day = dt.date.fromisoformat(typed_day)
    except ValueError:
        raise InvalidInput("the incident date is a day, as 2026-11-28", field="incident_date") from None
    try:
        amount = Money.from_decimal(typed_amount(form.get("amount", "")), currency)
    except (ValueError, InvalidOperation):
        raise InvalidInput(
            f"the cost is an amount in {currency}, as 1200.50 or 1200,50", field="amount"
        ) from None
    return ClaimInput(
        reference=reference,
        incident_kind=kind,
        incident_date=day,
        amount=amount,
        contract_id=contract_id,
        customer_id=customer_id,
        description=form.get("description") or None,
    )


def accepted_refund(form: dict[str, str], currency: str) -> Money:
    """The quoted refund the person saw and accepted (minor units, from the quote's form)."""
    raw = form.get("refund_amount", "")
    if not ascii_digits(raw):
        raise InvalidInput("the quoted refund is missing: ask for a quote first", field="refund")
    return Money(int(raw), currency)
