"""The plan catalog: plan definitions, eligibility and price-band selection.

A catalog file (TOML) is a list of plan versions. A published version never changes;
a change publishes a new version, and contracts pin the version they were sold under.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated

import msgspec

from entitlements.money import Money, is_currency
from entitlements.translations import SOURCE_LOCALE, languages

# Every language with a gettext catalog (`entitlements.translations`), English first.
LOCALES: tuple[str, ...] = languages()
DEFAULT_LOCALE = SOURCE_LOCALE

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
CurrencyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
MinorUnits = Annotated[int, msgspec.Meta(ge=0)]


class CoverageKind(StrEnum):
    MECHANICAL_BREAKDOWN = "mechanical_breakdown"
    ACCIDENTAL_DAMAGE = "accidental_damage"
    SCREEN = "screen"
    BATTERY = "battery"
    LIQUID_DAMAGE = "liquid_damage"
    THEFT_LOSS = "theft_loss"
    POWER_SURGE = "power_surge"
    IN_HOME_SERVICE = "in_home_service"


class ProductCategory(StrEnum):
    PHONE = "phone"
    TABLET = "tablet"
    LAPTOP = "laptop"
    TV = "tv"
    MAJOR_APPLIANCE = "major_appliance"
    SMALL_APPLIANCE = "small_appliance"
    WEARABLE = "wearable"
    AUDIO = "audio"
    GAMING = "gaming"
    CAMERA = "camera"


class Billing(StrEnum):
    UPFRONT = "upfront"
    MONTHLY = "monthly"
    ANNUAL = "annual"


class CoverageStart(StrEnum):
    PURCHASE = "purchase"
    AFTER_MANUFACTURER_WARRANTY = "after_manufacturer_warranty"


class ClaimWindow(StrEnum):
    TERM = "term"
    ROLLING_12_MONTHS = "rolling_12_months"


class BenefitKind(StrEnum):
    """A service a plan includes beyond repair."""

    INSTALLATION = "installation"
    MAINTENANCE_VISIT = "maintenance_visit"
    TECH_SUPPORT_SESSION = "tech_support_session"
    TRAINING_SESSION = "training_session"
    BATTERY_REPLACEMENT = "battery_replacement"
    SOFTWARE_SETUP = "software_setup"


class SupportChannel(StrEnum):
    """How a customer reaches support."""

    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"
    ON_SITE = "on_site"


class Ineligibility(StrEnum):
    PLAN_INACTIVE = "plan_inactive"
    CATEGORY_NOT_COVERED = "category_not_covered"
    COUNTRY_NOT_SERVED = "country_not_served"
    CURRENCY_NOT_OFFERED = "currency_not_offered"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    PURCHASE_TOO_OLD = "purchase_too_old"
    PURCHASE_IN_FUTURE = "purchase_in_future"


class PlanText(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=600)]
    terms: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class Coverage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: CoverageKind
    # Per currency, in that currency's minor units; a currency not listed has no deductible.
    deductibles: dict[CurrencyCode, MinorUnits] = {}
    # When this coverage begins, if later than the plan's cover: breakdown cover that starts when
    # the manufacturer's warranty ends, in a plan whose accidental damage cover starts at the sale.
    starts: CoverageStart | None = None
    # The most this coverage pays for one claim, per currency (a currency not listed: no cap).
    claim_max: dict[CurrencyCode, MinorUnits] = {}

    def deductible(self, currency: str) -> Money:
        return Money(self.deductibles.get(currency, 0), currency)

    def most_per_claim(self, currency: str) -> Money | None:
        amount = self.claim_max.get(currency)
        return None if amount is None else Money(amount, currency)


class ClaimLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    count: Annotated[int, msgspec.Meta(ge=1)] | None = None
    window: ClaimWindow = ClaimWindow.TERM
    # Approved claim amounts over the contract's life may not exceed the product's price.
    aggregate_up_to_product_price: bool = False
    # A claim filed more than this many days after its incident is denied; None: no window.
    filing_window_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class Benefit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A service the plan includes: `count` of them in each term, or in any 12 months."""

    kind: BenefitKind
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    window: ClaimWindow = ClaimWindow.TERM
    # What the customer pays for each, per currency (a currency not listed: nothing).
    fees: dict[CurrencyCode, MinorUnits] = {}
    visit: bool = False  # delivered on site: a redemption opens a service order for a servicer

    def fee(self, currency: str) -> Money:
        return Money(self.fees.get(currency, 0), currency)


class ClaimReview(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which claims wait for a reviewer, though the rules would approve them. Each rule is off
    unless set, so a version published before these rules keeps deciding as it did."""

    # Per currency, in minor units: a claim for more goes to review.
    amount_over: dict[CurrencyCode, MinorUnits] = {}
    theft_loss: bool = False  # every theft or loss claim
    # A claim of a kind the contract had approved within this many days before (a repeat repair).
    repeat_within_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    # A claim whose incident falls within this many days of the sale.
    days_after_sale: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    # A claim by a customer who filed more than this many in the 30 days before (a fraud signal).
    claims_in_30_days: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None


class Eligibility(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    categories: Annotated[list[ProductCategory], msgspec.Meta(min_length=1)]
    countries: list[CountryCode] = []  # empty: every country
    max_days_since_purchase: Annotated[int, msgspec.Meta(ge=0)] = 0


class PriceBand(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The plan's price for products priced in `[product_price_min, product_price_max)`."""

    currency: CurrencyCode
    product_price_min: MinorUnits
    price: Annotated[int, msgspec.Meta(ge=1)]
    product_price_max: MinorUnits | None = None  # None: no upper bound

    def contains(self, product_price: Money) -> bool:
        return (
            product_price.currency == self.currency
            and self.product_price_min <= product_price.amount
            and (self.product_price_max is None or product_price.amount < self.product_price_max)
        )


class Cancellation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    free_look_days: Annotated[int, msgspec.Meta(ge=0)] = 30
    pro_rata: bool = True
    fees: dict[CurrencyCode, MinorUnits] = {}

    def fee(self, currency: str) -> Money:
        return Money(self.fees.get(currency, 0), currency)


class Plan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    version: Annotated[int, msgspec.Meta(ge=1)]
    texts: dict[str, PlanText]
    coverages: Annotated[list[Coverage], msgspec.Meta(min_length=1)]
    term_months: Annotated[int, msgspec.Meta(ge=1, le=120)]
    billing: Billing
    eligibility: Eligibility
    prices: Annotated[list[PriceBand], msgspec.Meta(min_length=1)]
    active: bool = True
    auto_renew: bool = False
    coverage_start: CoverageStart = CoverageStart.PURCHASE
    # Applies when the plan is sold after the product's purchase date, never at the same checkout.
    waiting_period_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 0
    grace_period_days: Annotated[int, msgspec.Meta(ge=0, le=90)] = 14
    claim_limits: ClaimLimits = ClaimLimits()
    claim_review: ClaimReview = ClaimReview()
    cancellation: Cancellation = Cancellation()
    benefits: list[Benefit] = []  # the services the plan includes beyond repair
    # Days before each renewal that `renewal.upcoming` goes out; default 30 for an annual plan, 7
    # for a monthly one. California's automatic renewal law wants 15–45 for a yearly renewal.
    renewal_notice_days: Annotated[int, msgspec.Meta(ge=1, le=90)] | None = None

    def text(self, locale: str) -> PlanText:
        return self.texts.get(locale) or self.texts[DEFAULT_LOCALE]

    def renewal_notice(self) -> int | None:
        """Days before a renewal that the customer is told of it; None: the plan does not renew."""
        if not self.auto_renew:
            return None
        if self.renewal_notice_days is not None:
            return self.renewal_notice_days
        return 7 if self.billing is Billing.MONTHLY else 30

    def renews_yearly(self) -> bool:
        return self.auto_renew and (self.billing is Billing.ANNUAL or self.term_months >= 12)

    def currencies(self) -> list[str]:
        return sorted({band.currency for band in self.prices})

    def coverage(self, kind: str) -> Coverage | None:
        return next((c for c in self.coverages if c.kind == kind), None)

    def benefit(self, kind: str) -> Benefit | None:
        return next((b for b in self.benefits if b.kind == kind), None)

    def price_for(self, product_price: Money) -> Money | None:
        return select_price(self.prices, product_price)

    def digest(self) -> str:
        """A stable fingerprint of the definition, to tell an unchanged version from an edit."""
        return hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()


def select_price(bands: Iterable[PriceBand], product_price: Money) -> Money | None:
    for band in bands:
        if band.contains(product_price):
            return Money(band.price, band.currency)
    return None


class ProductFacts(msgspec.Struct, frozen=True):
    """What the checkout page knows about the product in the cart."""

    category: ProductCategory
    price: Money
    purchase_date: dt.date
    country: str


class EligibilityResult(msgspec.Struct, frozen=True):
    plan: Plan
    price: Money | None
    waiting_period_days: int
    reason: Ineligibility | None

    @property
    def eligible(self) -> bool:
        return self.reason is None


def assess(plan: Plan, product: ProductFacts, today: dt.date) -> EligibilityResult:
    """Is `plan` sellable for `product` today, at what price, and with what waiting period?"""
    days_since_purchase = (today - product.purchase_date).days
    waiting = plan.waiting_period_days if days_since_purchase > 0 else 0
    price = plan.price_for(product.price)
    reason: Ineligibility | None = None
    if not plan.active:
        reason = Ineligibility.PLAN_INACTIVE
    elif product.category not in plan.eligibility.categories:
        reason = Ineligibility.CATEGORY_NOT_COVERED
    elif plan.eligibility.countries and product.country not in plan.eligibility.countries:
        reason = Ineligibility.COUNTRY_NOT_SERVED
    elif days_since_purchase < 0:
        reason = Ineligibility.PURCHASE_IN_FUTURE
    elif days_since_purchase > plan.eligibility.max_days_since_purchase:
        reason = Ineligibility.PURCHASE_TOO_OLD
    elif product.price.currency not in plan.currencies():
        reason = Ineligibility.CURRENCY_NOT_OFFERED
    elif price is None:
        reason = Ineligibility.PRICE_OUT_OF_BAND
    return EligibilityResult(plan, price if reason is None else None, waiting, reason)


# ---------------------------------------------------------------------------------------------
# The catalog file


class CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    plans: list[Plan]


class CatalogProblem(msgspec.Struct, frozen=True):
    path: str
    message: str


def decode_catalog(raw: bytes) -> tuple[list[Plan], list[CatalogProblem]]:
    """Decode and check a TOML catalog; every problem comes back with its path in the file."""
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [], [CatalogProblem("$", f"not a TOML document: {exc}")]
    raw_plans = document.get("plans")
    if not isinstance(raw_plans, list) or not raw_plans:
        return [], [CatalogProblem("$.plans", "expected a non-empty array of plans")]
    extra = sorted(set(document) - {"plans"})
    problems = [CatalogProblem(f"$.{key}", "unknown key") for key in extra]
    plans: list[Plan] = []
    for index, raw_plan in enumerate(raw_plans):
        where = f"$.plans[{index}]"
        try:
            plan = msgspec.convert(raw_plan, Plan, strict=True)
        except msgspec.ValidationError as exc:
            problems.append(_problem_from_validation(where, str(exc)))
            continue
        plan_problems = check_plan(plan)
        problems.extend(CatalogProblem(f"{where}.{p.path}", p.message) for p in plan_problems)
        if not plan_problems:
            plans.append(plan)
    seen: dict[tuple[str, int], int] = {}
    for index, plan in enumerate(plans):
        key = (plan.code, plan.version)
        if key in seen:
            problems.append(CatalogProblem(f"$.plans[{index}]", f"{plan.code} v{plan.version} appears twice"))
        seen[key] = index
    return plans, problems


def _problem_from_validation(where: str, message: str) -> CatalogProblem:
    # msgspec says "… - at `$.prices[0].price`"; re-root that path at the plan's place.
    text, sep, path = message.rpartition(" - at `")
    if sep:
        return CatalogProblem(where + path.rstrip("`").removeprefix("$"), text)
    return CatalogProblem(where, message)


def check_plan(plan: Plan) -> list[CatalogProblem]:
    """Rules a schema cannot express. Paths are relative to the plan."""
    problems: list[CatalogProblem] = []
    for locale in plan.texts:
        if locale not in LOCALES:
            problems.append(CatalogProblem(f"texts.{locale}", f"unsupported locale; use {LOCALES}"))
    if DEFAULT_LOCALE not in plan.texts:
        problems.append(CatalogProblem("texts", "an English (en) text is required as fallback"))
    kinds = [c.kind for c in plan.coverages]
    if len(kinds) != len(set(kinds)):
        problems.append(CatalogProblem("coverages", "a coverage kind appears twice"))
    for i, coverage in enumerate(plan.coverages):
        if coverage.starts is CoverageStart.PURCHASE and plan.coverage_start is not CoverageStart.PURCHASE:
            problems.append(
                CatalogProblem(f"coverages[{i}].starts", "a coverage cannot begin before its plan's cover")
            )
        for currency in coverage.deductibles:
            if not is_currency(currency):
                problems.append(CatalogProblem(f"coverages[{i}].deductibles.{currency}", "unknown currency"))
        for currency in coverage.claim_max:
            if not is_currency(currency):
                problems.append(CatalogProblem(f"coverages[{i}].claim_max.{currency}", "unknown currency"))
    benefit_kinds = [b.kind for b in plan.benefits]
    if len(benefit_kinds) != len(set(benefit_kinds)):
        problems.append(CatalogProblem("benefits", "a benefit kind appears twice"))
    for i, benefit in enumerate(plan.benefits):
        for currency in benefit.fees:
            if not is_currency(currency):
                problems.append(CatalogProblem(f"benefits[{i}].fees.{currency}", "unknown currency"))
    for currency in plan.cancellation.fees:
        if not is_currency(currency):
            problems.append(CatalogProblem(f"cancellation.fees.{currency}", "unknown currency"))
    for currency in plan.claim_review.amount_over:
        if not is_currency(currency):
            problems.append(CatalogProblem(f"claim_review.amount_over.{currency}", "unknown currency"))
    for i, band in enumerate(plan.prices):
        if not is_currency(band.currency):
            problems.append(CatalogProblem(f"prices[{i}].currency", "unknown currency"))
        if band.product_price_max is not None and band.product_price_max <= band.product_price_min:
            problems.append(
                CatalogProblem(f"prices[{i}]", "product_price_max must be above product_price_min")
            )
    problems.extend(_overlapping_bands(plan.prices))
    if plan.billing is Billing.ANNUAL and plan.term_months % 12:
        problems.append(CatalogProblem("term_months", "an annual plan's term is whole years"))
    notice = plan.renewal_notice()
    if notice is not None and plan.renews_yearly() and not 15 <= notice <= 45:
        problems.append(
            CatalogProblem(
                "renewal_notice_days",
                f"a yearly renewal is announced 15 to 45 days ahead (California's automatic renewal "
                f"law), not {notice}",
            )
        )
    return problems


def _overlapping_bands(bands: Sequence[PriceBand]) -> list[CatalogProblem]:
    problems: list[CatalogProblem] = []
    for i, a in enumerate(bands):
        for j in range(i + 1, len(bands)):
            b = bands[j]
            if a.currency != b.currency:
                continue
            a_below_b_end = b.product_price_max is None or a.product_price_min < b.product_price_max
            b_below_a_end = a.product_price_max is None or b.product_price_min < a.product_price_max
            if a_below_b_end and b_below_a_end:
                problems.append(CatalogProblem(f"prices[{j}]", f"overlaps prices[{i}] for {a.currency}"))
    return problems


def encode_plan(plan: Plan) -> bytes:
    return msgspec.json.encode(plan, order="sorted")


def decode_plan(raw: bytes | str) -> Plan:
    return msgspec.json.decode(raw, type=Plan)
