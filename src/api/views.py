"""Response shapes shared by several resources, and the locale the caller asked for."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import HeaderParameter, QueryParameter

from entitlements.catalog import (
    DEFAULT_LOCALE,
    Billing,
    ClaimLimits,
    CoverageKind,
    CoverageStart,
    Eligibility,
    Plan,
)
from entitlements.errors import InvalidInput
from entitlements.localization import format_money, negotiate_locale
from entitlements.money import Money
from entitlements.terms import Clause, RenderedTerms

LOCALE_MAX = 35  # a BCP 47 tag, with room for its subtags

LocaleQuery = Annotated[
    str | None,
    QueryParameter(
        name="locale",
        description="en, fil, hi, sv, ar or vi; overrides Accept-Language",
        max_length=LOCALE_MAX,
        required=False,
    ),
]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="Replays the first response for 24 hours when the same key and body are sent again",
        min_length=1,
        max_length=255,
        required=False,
    ),
]


# An instant in a body: with its offset (a bare local time names no instant).
Instant = Annotated[dt.datetime, msgspec.Meta(tz=True)]

# An ISO 8601 instant with its offset: numbers and zone-less times are refused, not guessed. The
# pattern bounds its length (35 characters at most), so no maxLength is declared beside it: one
# would also ask a schema-driven client for a string that is too long and still matches.
INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$"


def instant_query(name: str, description: str) -> Any:
    return QueryParameter(name=name, pattern=INSTANT_PATTERN, required=False, description=description)


def parse_instant(raw: str | None, field: str) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"`{field}` is not an instant (e.g. 2026-11-23T10:00:00Z)", field=field) from None
    if value.tzinfo is None:  # a zone-less time is not guessed
        raise InvalidInput(f"`{field}` needs its offset (e.g. Z)", field=field)
    return supported_instant(value, field)


# The instants anyone may ask about: a term or a grace period added to one stays in the calendar
# (Python's ends at year 9999, and an offset moves year 1 before it).
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def supported_instant(value: dt.datetime, field: str) -> dt.datetime:
    """`value` in UTC, if it lies in [1900, 2200); else `InvalidInput` naming `field`."""
    if not EARLIEST <= value < LATEST:  # compared as instants: no conversion that could overflow
        raise InvalidInput(f"`{field}` must be from 1900 up to 2200", field=field)
    return value.astimezone(dt.UTC)


def caller_locale(request: Request[Any, Any, Any], explicit: str | None) -> str:
    return negotiate_locale(explicit, request.headers.get("accept-language"))


class Priced(msgspec.Struct, frozen=True):
    amount: int
    currency: str
    display: str  # formatted for the caller's locale

    @classmethod
    def of(cls, money: Money, locale: str) -> Priced:
        return cls(money.amount, money.currency, format_money(money, locale))


class CoverageView(msgspec.Struct, frozen=True):
    kind: CoverageKind
    deductibles: list[Money]


class PriceBandView(msgspec.Struct, frozen=True):
    product_price_min: Money
    product_price_max: Money | None
    price: Money


class CancellationView(msgspec.Struct, frozen=True):
    free_look_days: int
    pro_rata: bool
    fees: list[Money]


class PlanView(msgspec.Struct, frozen=True):
    code: str
    version: int
    active: bool
    locale: str
    name: str
    summary: str
    terms: str  # the plan's own words: what no field states (exclusions, how to claim)
    # The rule clauses per currency, rendered from the plan's fields when it was published.
    clauses: dict[str, list[Clause]]
    billing: Billing
    term_months: int
    auto_renew: bool
    coverage_start: CoverageStart
    waiting_period_days: int
    grace_period_days: int
    coverages: list[CoverageView]
    claim_limits: ClaimLimits
    eligibility: Eligibility
    currencies: list[str]
    prices: list[PriceBandView]
    cancellation: CancellationView

    @classmethod
    def of(cls, plan: Plan, locale: str, terms: RenderedTerms) -> PlanView:
        text = plan.text(locale)
        return cls(
            code=plan.code,
            version=plan.version,
            active=plan.active,
            locale=locale if locale in plan.texts else "en",
            name=text.name,
            summary=text.summary,
            terms=text.terms,
            clauses=terms.get(locale) or terms[DEFAULT_LOCALE],
            billing=plan.billing,
            term_months=plan.term_months,
            auto_renew=plan.auto_renew,
            coverage_start=plan.coverage_start,
            waiting_period_days=plan.waiting_period_days,
            grace_period_days=plan.grace_period_days,
            coverages=[
                CoverageView(c.kind, [Money(a, cur) for cur, a in sorted(c.deductibles.items())])
                for c in plan.coverages
            ],
            claim_limits=plan.claim_limits,
            eligibility=plan.eligibility,
            currencies=plan.currencies(),
            prices=[
                PriceBandView(
                    Money(b.product_price_min, b.currency),
                    None if b.product_price_max is None else Money(b.product_price_max, b.currency),
                    Money(b.price, b.currency),
                )
                for b in plan.prices
            ],
            cancellation=CancellationView(
                plan.cancellation.free_look_days,
                plan.cancellation.pro_rata,
                [Money(a, cur) for cur, a in sorted(plan.cancellation.fees.items())],
            ),
        )
