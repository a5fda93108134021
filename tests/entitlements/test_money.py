from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.money import CURRENCY_EXPONENTS, CurrencyMismatch, Money, UnknownCurrency, exponent

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
amounts = st.integers(min_value=-(10**15), max_value=10**15)


def test_currencies_have_their_real_exponent() -> None:
    assert [exponent(c) for c in ("VND", "JPY", "KRW", "USD", "PHP", "INR", "SEK", "SAR", "KWD", "BHD")] == [
        0,
        0,
        0,
        2,
        2,
        2,
        2,
        2,
        3,
        3,
    ]


@given(amounts, currencies)
def test_minor_units_survive_a_trip_through_major_units(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    assert Money.from_decimal(money.to_decimal(), currency) == money


@given(amounts, currencies)
def test_json_round_trip_keeps_integer_minor_units(amount: int, currency: str) -> None:
    raw = msgspec.json.encode(Money(amount, currency))
    assert msgspec.json.decode(raw, type=Money) == Money(amount, currency)
    assert f'"amount":{amount}'.encode() in raw


@given(amounts, amounts, currencies)
def test_addition_and_subtraction_are_exact(a: int, b: int, currency: str) -> None:
    assert (Money(a, currency) + Money(b, currency)) - Money(b, currency) == Money(a, currency)


def test_zero_decimal_currencies_refuse_fractions() -> None:
    with pytest.raises(ValueError, match="more decimals"):
        Money.from_decimal("1500.5", "VND")
    assert Money.from_decimal("1500000", "VND") == Money(1_500_000, "VND")
    assert Money.from_decimal("1.234", "KWD") == Money(1234, "KWD")


def test_floats_and_unknown_currencies_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="Expected `int`, got `float`"):
        msgspec.json.decode(b'{"amount": 12.5, "currency": "USD"}', type=Money)
    with pytest.raises(msgspec.ValidationError, match="unknown currency"):
        msgspec.json.decode(b'{"amount": 1250, "currency": "XXX"}', type=Money)
    with pytest.raises(UnknownCurrency):
        Money(100, "usd")
    with pytest.raises(TypeError):
        Money(True, "USD")


def test_currencies_do_not_mix() -> None:
    with pytest.raises(CurrencyMismatch):
        Money(100, "USD") + Money(100, "PHP")


def test_display_uses_the_exponent() -> None:
    assert str(Money(129900, "PHP")) == "1299.00 PHP"
    assert str(Money(1500000, "VND")) == "1500000 VND"
    assert Money(1234, "KWD").to_decimal() == Decimal("1.234")
