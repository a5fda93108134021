"""Money as integer minor units of an ISO 4217 currency.

The exponent is the currency's real one (ISO 4217 / Stripe): VND and JPY have none,
KWD and BHD have three. Floats are never accepted.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Self

import msgspec

from entitlements.errors import InvalidInput

_MAJOR_UNITS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

# ISO 4217 active codes whose minor unit is not 2.
_EXPONENT_OVERRIDES: dict[str, int] = {
    # zero-decimal
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # three-decimal
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # four-decimal
    "CLF": 4,
    "UYW": 4,
}

# ISO 4217 active codes with the usual two-decimal minor unit.
_TWO_DECIMAL = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BMD",
        "BND",
        "BOB",
        "BOV",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHE",
        "CHF",
        "CHW",
        "CNY",
        "COP",
        "COU",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IRR",
        "JMD",
        "KES",
        "KGS",
        "KHR",
        "KPW",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MXV",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "USD",
        "USN",
        "UYU",
        "UZS",
        "VED",
        "VES",
        "WST",
        "XCD",
        "XCG",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)

CURRENCY_EXPONENTS: dict[str, int] = {code: 2 for code in _TWO_DECIMAL} | _EXPONENT_OVERRIDES


class UnknownCurrency(ValueError):
    """The code is not an active ISO 4217 currency."""


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(f"unknown currency {currency!r}") from None


def is_currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS


# What PostgreSQL's bigint holds: an amount past it cannot be stored, so it is not read.
MinorUnits = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class Money(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An amount in minor units; `{"amount": 129900, "currency": "PHP"}` is PHP 1,299.00."""

    amount: MinorUnits
    currency: str

    def __post_init__(self) -> None:
        # msgspec already refuses floats for `int`; bool is an int subclass in Python.
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("amount must be an integer number of minor units")
        exponent(self.currency)

    @classmethod
    def of(cls, amount: int, currency: str) -> Self:
        return cls(amount=amount, currency=currency)

    @classmethod
    def from_decimal(cls, value: Decimal | str, currency: str) -> Self:
        """Major units (e.g. '1299.00') to minor units, refusing extra precision, and anything
        but ASCII digits with one decimal point ('1e3', 'Infinity', '١٠' are not amounts)."""
        if isinstance(value, str) and not _MAJOR_UNITS.fullmatch(value):
            raise ValueError(f"{value!r} is not an amount: digits, with a decimal point if any")
        if not Decimal(value).is_finite():
            raise ValueError(f"{value} is not an amount")
        scaled = Decimal(value).scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more decimals than {currency} allows")
        return cls(amount=int(scaled), currency=currency)

    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-self.exponent)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def decimal_text(self) -> str:
        """Major units in plain notation (`1299.00`, `1500000`): for CSV and reports."""
        return f"{self.to_decimal():f}"

    def __str__(self) -> str:
        return f"{self.decimal_text()} {self.currency}"


# The most a product's price or a claim's amount may be, per currency in minor units: about USD
# 100,000 (a price past every plan's bands is no product we protect, and int64 amounts once bought
# a plan). A currency not listed may go up to `CEILING_ELSEWHERE`. A deployment changes them with
# `COVERLINE_AMOUNT_CEILINGS` (`configure_ceilings`).
DEFAULT_CEILINGS: dict[str, int] = {
    "USD": 10_000_000,
    "EUR": 10_000_000,
    "GBP": 8_000_000,
    "CAD": 14_000_000,
    "AUD": 15_000_000,
    "JPY": 15_000_000,
    "PHP": 580_000_000,
    "INR": 850_000_000,
    "SEK": 110_000_000,
    "SAR": 37_500_000,
    "AED": 37_000_000,
    "VND": 2_600_000_000,
}
CEILING_ELSEWHERE = 10**12
_ceilings = dict(DEFAULT_CEILINGS)


def configure_ceilings(overrides: dict[str, int]) -> None:
    """The deployment's ceilings: the defaults, with these in their place."""
    _ceilings.clear()
    _ceilings.update(DEFAULT_CEILINGS | overrides)


def ceiling(currency: str) -> int:
    return _ceilings.get(currency, CEILING_ELSEWHERE)


def check_amount(money: Money, field: str) -> Money:
    """`money`, if it lies between 0 and its currency's ceiling; else a problem naming `field`."""
    most = ceiling(money.currency)
    if not 0 <= money.amount <= most:
        detail = f"{field.removesuffix('.amount')} must be from 0 to {Money(most, money.currency)}"
        raise InvalidInput(detail, field=field)
    return money
