"""What the pages' forms say, read into the use cases' inputs: a field that does not read is a
problem naming it, never a crash, and amounts are read as people type them."""

from __future__ import annotations

import pytest

from api.pages.forms import claim_input
from entitlements.errors import InvalidInput

FORM = {"incident_kind": "accidental_damage", "incident_date": "2026-11-28", "amount": "100"}


def read(**changed: str) -> object:
    return claim_input({**FORM, **changed}, source="portal", contract_id="ctr_1", currency="SEK")


@pytest.mark.parametrize(
    "typed", ["Infinity", "-Infinity", "1E+999999999", "sNaN", "NaN", "1e3", "１０", "٥", "10,5,1", ""]
)
def test_an_amount_that_is_not_digits_is_refused_naming_the_field(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        read(amount=typed)
    assert refused.value.field == "amount"


@pytest.mark.parametrize(("typed", "minor"), [("1200,50", 120050), ("1200.5", 120050), (" 99 ", 9900)])
def test_a_decimal_comma_is_a_decimal_point(typed: str, minor: int) -> None:
    assert read(amount=typed).amount.amount == minor  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("incident_date", "28/11/2026"),
        ("incident_date", "20261128"),  # Python reads it; the API does not
        ("incident_date", "2026-W48-6"),
        ("incident_kind", "meteor"),
    ],
)
def test_each_field_that_does_not_read_is_named(field: str, typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        read(**{field: typed})
    assert refused.value.field == field


def test_the_forms_reference_is_kept_and_a_forged_one_replaced() -> None:
    kept = claim_input(
        {**FORM, "reference": "portal-" + "ab" * 10}, source="portal", contract_id="c", currency="SEK"
    )
    assert kept.reference == "portal-" + "ab" * 10
    forged = claim_input(
        {**FORM, "reference": "console-" + "ab" * 10}, source="portal", contract_id="c", currency="SEK"
    )
    assert forged.reference.startswith("portal-") and forged.reference != kept.reference
