"""A plan's terms, rendered from the plan's own fields: what is covered, the deductibles, claim
limits, waiting period, when cover starts, payment and grace, free look and refunds, renewal.

The plan's free text (`PlanText.terms`) adds only what no field states (exclusions, how to make a
claim); every clause that states a rule the engine applies comes from here, so the terms and the
engine cannot disagree. A plan version's terms are rendered when it is published and stored with
it (`entitlements.store.plans`), so a later change to these templates never alters what a sold
contract says.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

import msgspec
from babel import Locale
from babel.lists import format_list

from entitlements.catalog import LOCALES, Billing, ClaimWindow, CoverageStart, Plan
from entitlements.localization import fill, format_money, format_number
from entitlements.summaries import support_words
from entitlements.summary_texts import BENEFITS, DURATIONS, INCIDENTS, TERMS
from entitlements.translations import translate


class Topic(StrEnum):
    COVERAGES = "coverages"
    DEDUCTIBLE = "deductible"
    CLAIM_MAX = "claim_max"
    CLAIMS = "claims"
    AGGREGATE = "aggregate"
    BENEFITS = "benefits"
    SUPPORT = "support"
    FILING = "filing_window"
    WAITING = "waiting_period"
    ELIGIBILITY = "eligibility"
    START = "coverage_start"
    PAYMENT = "payment"
    GRACE = "grace"
    FREE_LOOK = "free_look"
    REFUND = "refund"
    RENEWAL = "renewal"


class Clause(msgspec.Struct, frozen=True):
    topic: Topic
    text: str


# locale → currency → clauses, as stored with a published plan version.
RenderedTerms = dict[str, dict[str, list[Clause]]]


@lru_cache(maxsize=16)
def _babel(locale: str) -> Locale:
    return Locale.parse(locale)


def duration(count: int, unit: str, locale: str) -> str:
    """`30 days`, `1 month`, `24 شهرًا`: the unit in the form the count takes in that language."""
    category = _babel(locale).plural_form(count)
    key = f"{unit}:{category}"
    return translate(locale, key, DURATIONS[key]).format(count=format_number(count, locale))


def _say(locale: str, key: str, **values: str) -> str:
    return fill(translate(locale, key, TERMS[key]), **values)


def _incident(locale: str, kind: str, first: bool) -> str:
    name = translate(locale, "incident", INCIDENTS[kind])  # type: ignore[index]
    return name if first else name[:1].lower() + name[1:]


def render_terms(plan: Plan, locale: str, currency: str) -> list[Clause]:
    """The plan's rule clauses in `locale`, with amounts in `currency`."""

    def say(topic: Topic, key: str, **values: str) -> Clause:
        return Clause(topic, _say(locale, key, **values))

    def days(count: int) -> str:
        return duration(count, "days", locale)

    term = duration(plan.term_months, "months", locale)
    names = [_incident(locale, c.kind, first=False) for c in plan.coverages]
    clauses = [say(Topic.COVERAGES, "terms_coverages", coverages=format_list(names, locale=locale))]
    for coverage in plan.coverages:
        name = _incident(locale, coverage.kind, first=True)
        deductible = coverage.deductible(currency)
        if deductible.amount > 0:
            amount = format_money(deductible, locale)
            clauses.append(say(Topic.DEDUCTIBLE, "terms_deductible", incident=name, amount=amount))
        else:
            clauses.append(say(Topic.DEDUCTIBLE, "terms_no_deductible", incident=name))
        most = coverage.most_per_claim(currency)
        if most is not None:
            clauses.append(
                say(Topic.CLAIM_MAX, "terms_claim_max", incident=name, amount=format_money(most, locale))
            )
    limits = plan.claim_limits
    if limits.count is None:
        clauses.append(say(Topic.CLAIMS, "terms_claims_unlimited"))
    elif limits.window is ClaimWindow.ROLLING_12_MONTHS:
        count, period = format_number(limits.count, locale), duration(12, "months", locale)
        clauses.append(say(Topic.CLAIMS, "terms_claims_rolling", count=count, period=period))
    else:
        count = format_number(limits.count, locale)
        clauses.append(say(Topic.CLAIMS, "terms_claims_term", count=count, term=term))
    if limits.aggregate_up_to_product_price:
        clauses.append(say(Topic.AGGREGATE, "terms_aggregate"))
    for benefit in plan.benefits:
        name = translate(locale, "benefit", BENEFITS[benefit.kind])
        count = format_number(benefit.count, locale)
        if benefit.window is ClaimWindow.ROLLING_12_MONTHS:
            period = duration(12, "months", locale)
            clauses.append(
                say(Topic.BENEFITS, "terms_benefit_rolling", benefit=name, count=count, period=period)
            )
        else:
            clauses.append(say(Topic.BENEFITS, "terms_benefit_term", benefit=name, count=count, term=term))
        fee = benefit.fee(currency)
        if fee.amount > 0:
            clauses.append(
                say(Topic.BENEFITS, "terms_benefit_fee", benefit=name, fee=format_money(fee, locale))
            )
        if benefit.visit:
            clauses.append(say(Topic.BENEFITS, "terms_benefit_visit", benefit=name))
    if plan.support is not None:
        level, channels = support_words(plan.support.level, plan.support.channels, locale)
        clauses.append(say(Topic.SUPPORT, "terms_support", level=level, channels=channels))
    if limits.filing_window_days is not None:
        clauses.append(say(Topic.FILING, "terms_filing_window", days=days(limits.filing_window_days)))
    if plan.waiting_period_days:
        clauses.append(say(Topic.WAITING, "terms_waiting", days=days(plan.waiting_period_days)))
    else:
        clauses.append(say(Topic.WAITING, "terms_no_waiting"))
    window = plan.eligibility.max_days_since_purchase
    if window:
        clauses.append(say(Topic.ELIGIBILITY, "terms_purchase_window", days=days(window)))
    else:
        clauses.append(say(Topic.ELIGIBILITY, "terms_purchase_same_day"))
    if plan.eligibility.countries:
        territories = _babel(locale).territories
        countries = format_list([territories.get(c, c) for c in plan.eligibility.countries], locale=locale)
        clauses.append(say(Topic.ELIGIBILITY, "terms_countries", countries=countries))
    if plan.coverage_start is CoverageStart.AFTER_MANUFACTURER_WARRANTY:
        clauses.append(say(Topic.START, "terms_starts_after_warranty"))
    for coverage in plan.coverages:
        if (
            coverage.starts is CoverageStart.AFTER_MANUFACTURER_WARRANTY
            and plan.coverage_start is CoverageStart.PURCHASE
        ):
            name = _incident(locale, coverage.kind, first=True)
            clauses.append(say(Topic.START, "terms_coverage_after_warranty", incident=name))
    pays = {
        Billing.UPFRONT: "terms_pays_upfront",
        Billing.MONTHLY: "terms_pays_monthly",
        Billing.ANNUAL: "terms_pays_annually",
    }
    clauses.append(say(Topic.PAYMENT, pays[plan.billing]))
    if plan.billing is not Billing.UPFRONT:  # a renewal or an instalment can fail
        clauses.append(say(Topic.GRACE, "terms_grace", days=days(plan.grace_period_days)))
    cancellation = plan.cancellation
    if cancellation.free_look_days:
        clauses.append(say(Topic.FREE_LOOK, "terms_free_look", days=days(cancellation.free_look_days)))
    fee = cancellation.fee(currency)
    if not cancellation.pro_rata:
        clauses.append(say(Topic.REFUND, "terms_no_refund"))
    elif fee.amount > 0:
        clauses.append(say(Topic.REFUND, "terms_pro_rata_fee", fee=format_money(fee, locale)))
    else:
        clauses.append(say(Topic.REFUND, "terms_pro_rata"))
    if plan.auto_renew:
        clauses.append(say(Topic.RENEWAL, "terms_renews", term=term))
    else:
        clauses.append(say(Topic.RENEWAL, "terms_fixed", term=term))
    return clauses


def render_all(plan: Plan) -> RenderedTerms:
    """Every language's clauses for every currency the plan is sold in."""
    return {
        locale: {currency: render_terms(plan, locale, currency) for currency in plan.currencies()}
        for locale in LOCALES
    }
