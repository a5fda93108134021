"""The plan catalog: plan definitions, eligibility and price-band selection.

A catalog file (TOML) is a list of plan versions. A published version never changes;
a change publishes a new version, and contracts pin the version they were sold under.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

import msgspec

from entitlements.money import Money, is_currency
from entitlements.translations import SOURCE_LOCALE, languages
from entitlements.zones import UTC as UTC_ZONE
from entitlements.zones import known_zone

# Every language with a gettext catalog (`entitlements.translations`), English first.
LOCALES: tuple[str, ...] = languages()
DEFAULT_LOCALE = SOURCE_LOCALE

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
CurrencyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
# What PostgreSQL keeps a plan's numbers in: an amount in a bigint, a version in an integer.
BIGINT_MAX, INTEGER_MAX = 2**63 - 1, 2**31 - 1
MinorUnits = Annotated[int, msgspec.Meta(ge=0, le=BIGINT_MAX)]


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
    E_BIKE = "e_bike"  # the frame number is its serial


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


class SupportLevel(StrEnum):
    STANDARD = "standard"
    PRIORITY = "priority"  # answered first, by senior agents (AppleCare+'s priority access)


class ExchangePolicy(StrEnum):
    """What a claim's fulfilment offers first."""

    REPAIR_FIRST = "repair_first"
    ADVANCE_REPLACEMENT = "advance_replacement"  # a replacement sent before the broken one comes back


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class Ineligibility(StrEnum):
    PLAN_INACTIVE = "plan_inactive"
    CATEGORY_NOT_COVERED = "category_not_covered"
    COUNTRY_NOT_SERVED = "country_not_served"
    CURRENCY_NOT_OFFERED = "currency_not_offered"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    PURCHASE_TOO_OLD = "purchase_too_old"
    PURCHASE_IN_FUTURE = "purchase_in_future"


# What no text of the catalog may hold: control characters but a line's end and a tab (a NUL
# makes SSML unreadable and a letter unsendable), and the direction embeddings and overrides
# (U+202A to U+202E), which make one name read as another. Marks and isolates stay: right-to-left
# texts need them.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e]")


def _unprintable(where: str, texts: dict[str, str]) -> list[CatalogProblem]:
    """A problem for each of `texts` (field: text) that holds what `_UNPRINTABLE` finds."""
    return [
        CatalogProblem(
            f"{where}.{field}",
            f"holds U+{ord(found.group()):04X}: no control characters or direction overrides",
        )
        for field, text in texts.items()
        if (found := _UNPRINTABLE.search(text))
    ]


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
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
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


ClockTime = Annotated[str, msgspec.Meta(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]


class Hours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Opening hours on some days of the week, local to the schedule: `opens` to `closes`
    (`24:00`: the day's end)."""

    days: Annotated[tuple[Weekday, ...], msgspec.Meta(min_length=1)]
    opens: ClockTime
    closes: ClockTime


def clock_minutes(value: str) -> int:
    """`09:30` → 570, `24:00` → 1440."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class Schedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When support works: weekly hours in a time zone, less its holidays. A catalog defines
    its schedules once, by name (`[schedules.<name>]`), and a plan names one; `24/7` is built in.
    A published plan keeps a copy, so a later change to the catalog never moves a sold
    contract's due-by instants."""

    time_zone: str
    hours: Annotated[tuple[Hours, ...], msgspec.Meta(min_length=1)]
    holidays: Annotated[tuple[dt.date, ...], msgspec.Meta(max_length=1000)] = ()


@lru_cache(maxsize=256)
def weekly_intervals(schedule: Schedule) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per weekday (Monday first, as `date.weekday()` counts), the opening intervals in minutes
    of the day, merged."""
    weekdays = list(Weekday)
    days: list[list[tuple[int, int]]] = [[] for _ in weekdays]
    for hours in schedule.hours:
        for day in hours.days:
            days[weekdays.index(day)].append((clock_minutes(hours.opens), clock_minutes(hours.closes)))
    merged: list[tuple[tuple[int, int], ...]] = []
    for intervals in days:
        joined: list[tuple[int, int]] = []
        for opens, closes in sorted(intervals):
            if joined and opens <= joined[-1][1]:
                joined[-1] = (joined[-1][0], max(joined[-1][1], closes))
            else:
                joined.append((opens, closes))
        merged.append(tuple(joined))
    return tuple(merged)


def week_minutes(schedule: Schedule) -> int:
    """The minutes a schedule is open in a week with no holiday."""
    return sum(
        closes - opens for day in weekly_intervals(schedule) for opens, closes in day if closes > opens
    )


ALWAYS = Schedule(UTC_ZONE, (Hours(tuple(Weekday), "00:00", "24:00"),))
SCHEDULE_NAMES = {"24/7": ALWAYS}


class SupportTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How soon a case opened on a channel is first answered, and resolved: business minutes
    of the plan's support schedule."""

    channel: SupportChannel
    first_response_minutes: Annotated[int, msgspec.Meta(ge=1, le=525_600)]
    resolution_minutes: Annotated[int, msgspec.Meta(ge=1, le=525_600)]


class Support(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The support a plan grants: its level, the channels it entitles, the targets per channel in
    its schedule's business hours, and what a claim's fulfilment offers first."""

    level: SupportLevel
    channels: Annotated[list[SupportChannel], msgspec.Meta(min_length=1)]
    targets: list[SupportTarget] = []
    schedule: Schedule = ALWAYS
    exchange: ExchangePolicy = ExchangePolicy.REPAIR_FIRST

    def target(self, channel: SupportChannel) -> SupportTarget | None:
        return next((t for t in self.targets if t.channel == channel), None)


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
    max_days_since_purchase: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = 0


class PriceBand(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The plan's price for products priced in `[product_price_min, product_price_max)`."""

    currency: CurrencyCode
    product_price_min: MinorUnits
    price: Annotated[int, msgspec.Meta(ge=1, le=BIGINT_MAX)]
    product_price_max: MinorUnits | None = None  # None: no upper bound

    def contains(self, product_price: Money) -> bool:
        return (
            product_price.currency == self.currency
            and self.product_price_min <= product_price.amount
            and (self.product_price_max is None or product_price.amount < self.product_price_max)
        )


class Cancellation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    free_look_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 30
    pro_rata: bool = True
    fees: dict[CurrencyCode, MinorUnits] = {}

    def fee(self, currency: str) -> Money:
        return Money(self.fees.get(currency, 0), currency)


class Plan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    version: Annotated[int, msgspec.Meta(ge=1, le=INTEGER_MAX)]
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
    support: Support | None = None  # the support level it grants (None: the merchant's usual)
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


def assess(plan: Plan, product: ProductFacts, days: tuple[dt.date, dt.date]) -> EligibilityResult:
    """Is `plan` sellable for `product` today, at what price, and with what waiting period?

    `days` are the earliest and the latest day it is where the product was bought
    (`zones.country_days`: the shop may date its sales by the country's clock or by UTC's). A
    purchase dated after the latest is in the future; one dated the earliest or later was made
    today, at the same checkout (no waiting period); days since the purchase count from the
    earliest."""
    earliest, latest = days
    days_since_purchase = max((earliest - product.purchase_date).days, 0)
    waiting = plan.waiting_period_days if days_since_purchase > 0 else 0
    price = plan.price_for(product.price)
    reason: Ineligibility | None = None
    if not plan.active:
        reason = Ineligibility.PLAN_INACTIVE
    elif product.category not in plan.eligibility.categories:
        reason = Ineligibility.CATEGORY_NOT_COVERED
    elif plan.eligibility.countries and product.country not in plan.eligibility.countries:
        reason = Ineligibility.COUNTRY_NOT_SERVED
    elif product.purchase_date > latest:
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


class ResourceText(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s<>\"']+$", max_length=2000)]


class Resource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Training for a product category (a guide, a video course), in each language it exists
    in: a "getting started" letter lists those of the customer's product."""

    category: ProductCategory
    texts: dict[str, ResourceText]

    def text(self, locale: str) -> ResourceText:
        return self.texts.get(locale) or self.texts[DEFAULT_LOCALE]


class CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    plans: list[Plan]
    schedules: dict[str, Schedule] = {}
    resources: list[Resource] = []


class CatalogProblem(msgspec.Struct, frozen=True):
    path: str
    message: str


def decode_catalog(raw: bytes) -> tuple[list[Plan], list[CatalogProblem]]:
    """Decode and check a TOML catalog's plans; every problem (of the whole file) comes back with
    its path in the file."""
    plans, _, problems = decode_catalog_file(raw)
    return plans, problems


def decode_catalog_file(raw: bytes) -> tuple[list[Plan], list[Resource], list[CatalogProblem]]:
    """Decode and check a TOML catalog: its plans and its training resources."""
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [], [], [CatalogProblem("$", f"not a TOML document: {exc}")]
    raw_plans = document.get("plans")
    if not isinstance(raw_plans, list) or not raw_plans:
        return [], [], [CatalogProblem("$.plans", "expected a non-empty array of plans")]
    extra = sorted(set(document) - {"plans", "schedules", "resources"})
    problems = [CatalogProblem(f"$.{key}", "unknown key") for key in extra]
    schedules, schedule_problems = _schedules(document.get("schedules", {}))
    problems += schedule_problems
    plans: list[Plan] = []
    for index, raw_plan in enumerate(raw_plans):
        where = f"$.plans[{index}]"
        named = _named_schedule(raw_plan)
        if named is not None:
            if named not in schedules:
                known = ", ".join(sorted(schedules)) or "none"
                problems.append(
                    CatalogProblem(f"{where}.support.schedule", f"no schedule {named!r} (defined: {known})")
                )
                continue
            raw_plan["support"]["schedule"] = msgspec.to_builtins(schedules[named])
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
    resources, resource_problems = _resources(document.get("resources", []))
    return plans, resources, problems + resource_problems


def _resources(raw: object) -> tuple[list[Resource], list[CatalogProblem]]:
    try:
        resources = msgspec.convert(raw, list[Resource], strict=True)
    except msgspec.ValidationError as exc:
        return [], [_problem_from_validation("$.resources", str(exc))]
    problems = []
    for i, resource in enumerate(resources):
        if DEFAULT_LOCALE not in resource.texts:
            problems.append(
                CatalogProblem(f"$.resources[{i}].texts", "an English (en) text is required as fallback")
            )
        for locale, text in resource.texts.items():
            problems += _unprintable(
                f"$.resources[{i}].texts.{locale}", {"title": text.title, "url": text.url}
            )
        problems += [
            CatalogProblem(f"$.resources[{i}].texts.{locale}", f"unsupported locale; use {LOCALES}")
            for locale in resource.texts
            if locale not in LOCALES
        ]
    return (resources, []) if not problems else ([], problems)


def _schedules(raw: object) -> tuple[dict[str, Schedule], list[CatalogProblem]]:
    """The catalog's named schedules, with the built-in `24/7`."""
    if not isinstance(raw, dict):
        return dict(SCHEDULE_NAMES), [CatalogProblem("$.schedules", "expected a table of schedules by name")]
    found, problems = dict(SCHEDULE_NAMES), []
    for name, value in raw.items():
        try:
            schedule = msgspec.convert(value, Schedule, strict=True)
        except msgspec.ValidationError as exc:
            problems.append(_problem_from_validation(f"$.schedules.{name}", str(exc)))
            continue
        schedule_problems = check_schedule(schedule)
        problems += [CatalogProblem(f"$.schedules.{name}.{p.path}", p.message) for p in schedule_problems]
        if not schedule_problems:
            found[name] = schedule
    return found, problems


def _named_schedule(raw_plan: object) -> str | None:
    """The schedule a plan names (`support.schedule = "office"`), if it names one."""
    support = raw_plan.get("support") if isinstance(raw_plan, dict) else None
    named = support.get("schedule") if isinstance(support, dict) else None
    return named if isinstance(named, str) else None


def check_schedule(schedule: Schedule) -> list[CatalogProblem]:
    problems = []
    if not known_zone(schedule.time_zone):
        problems.append(CatalogProblem("time_zone", f"{schedule.time_zone!r} is not an IANA time zone"))
    for i, hours in enumerate(schedule.hours):
        if clock_minutes(hours.closes) <= clock_minutes(hours.opens):
            problems.append(CatalogProblem(f"hours[{i}]", "closes after it opens, within the day"))
    return problems


def _problem_from_validation(where: str, message: str) -> CatalogProblem:
    # msgspec says "… - at `$.prices[0].price`"; re-root that path at the plan's place.
    text, sep, path = message.rpartition(" - at `")
    if sep:
        return CatalogProblem(where + path.rstrip("`").removeprefix("$"), text)
    return CatalogProblem(where, message)


def check_plan(plan: Plan) -> list[CatalogProblem]:
    """Rules a schema cannot express. Paths are relative to the plan."""
    problems: list[CatalogProblem] = []
    for locale, text in plan.texts.items():
        if locale not in LOCALES:
            problems.append(CatalogProblem(f"texts.{locale}", f"unsupported locale; use {LOCALES}"))
        problems += _unprintable(
            f"texts.{locale}", {"name": text.name, "summary": text.summary, "terms": text.terms}
        )
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
    if plan.support is not None:
        support = plan.support
        problems += [
            CatalogProblem(f"support.schedule.{p.path}", p.message) for p in check_schedule(support.schedule)
        ]
        for i, target in enumerate(support.targets):
            if target.channel not in support.channels:
                problems.append(
                    CatalogProblem(
                        f"support.targets[{i}]", "a target for a channel the plan does not entitle"
                    )
                )
            # A due-by is found within a year of the schedule's opening hours.
            if target.resolution_minutes > 52 * week_minutes(support.schedule):
                problems.append(
                    CatalogProblem(f"support.targets[{i}]", "more than a year of the schedule's hours")
                )
            if target.resolution_minutes < target.first_response_minutes:
                problems.append(
                    CatalogProblem(f"support.targets[{i}]", "resolution comes after the first response")
                )
        if len({t.channel for t in support.targets}) != len(support.targets):
            problems.append(CatalogProblem("support.targets", "a channel has two targets"))
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
