"""A plan's terms state its rules from its own fields: checked against the plan data, in every
language and currency, without the templates (only the locale's own formatting of amounts and
numbers, and the glossary's word for each fact)."""

from __future__ import annotations

import pytest
from babel import Locale

from api.app import CoverlineApp
from entitlements import terms as terms_module
from entitlements.catalog import LOCALES, Billing, ClaimWindow, Plan, decode_catalog
from entitlements.glossary import GLOSSARY
from entitlements.localization import format_money, format_number
from entitlements.store import plans as plan_store
from entitlements.store.plans import PlanRepository
from entitlements.terms import Clause, Topic, render_terms
from tests.conftest import DEMO_CATALOG

PLANS, _ = decode_catalog(DEMO_CATALOG.read_bytes())
CASES = [(plan, locale, currency) for plan in PLANS for locale in LOCALES for currency in plan.currencies()]


def has_term(text: str, locale: str, concept: str) -> bool:
    return any(form.lower() in text.lower() for form in GLOSSARY[locale][concept].chosen)


def by_topic(clauses: list[Clause]) -> dict[Topic, list[str]]:
    found: dict[Topic, list[str]] = {}
    for clause in clauses:
        found.setdefault(clause.topic, []).append(clause.text)
    return found


def number(value: int, locale: str) -> str:
    return format_number(value, locale)


@pytest.mark.parametrize(("plan", "locale", "currency"), CASES, ids=lambda v: getattr(v, "code", v))
def test_each_clause_states_the_plans_own_rule(plan: Plan, locale: str, currency: str) -> None:
    clauses = by_topic(render_terms(plan, locale, currency))

    deductibles = clauses[Topic.DEDUCTIBLE]
    assert len(deductibles) == len(plan.coverages)
    for coverage, text in zip(plan.coverages, deductibles, strict=True):
        amount = coverage.deductible(currency)
        assert has_term(text, locale, "deductible"), text
        if amount.amount:
            assert format_money(amount, locale) in text, (text, amount)
        else:
            assert not any(ch.isdigit() for ch in text), text  # "no deductible"

    capped = [c for c in plan.coverages if c.most_per_claim(currency) is not None]
    assert len(clauses.get(Topic.CLAIM_MAX, [])) == len(capped)
    for coverage, text in zip(capped, clauses.get(Topic.CLAIM_MAX, []), strict=True):
        most = coverage.most_per_claim(currency)
        assert most is not None and format_money(most, locale) in text and has_term(text, locale, "claim"), (
            text
        )

    [claims] = clauses[Topic.CLAIMS]
    assert has_term(claims, locale, "claim"), claims
    limits = plan.claim_limits
    if limits.count is not None:
        assert number(limits.count, locale) in claims
        window = 12 if limits.window is ClaimWindow.ROLLING_12_MONTHS else plan.term_months
        assert number(window, locale) in claims or window in (1, 2), claims
    assert (Topic.AGGREGATE in clauses) is limits.aggregate_up_to_product_price
    assert len(clauses.get(Topic.SUPPORT, [])) == (plan.support is not None)
    included = clauses.get(Topic.BENEFITS, [])  # each service: its count, then its fee and its visit
    assert len(included) == sum(1 + (b.fee(currency).amount > 0) + b.visit for b in plan.benefits)
    for benefit in plan.benefits:
        assert any(number(benefit.count, locale) in text for text in included)
    if limits.filing_window_days is None:
        assert Topic.FILING not in clauses
    else:
        [filing] = clauses[Topic.FILING]
        assert has_term(filing, locale, "claim") and number(limits.filing_window_days, locale) in filing, (
            filing
        )

    eligibility = " ".join(clauses[Topic.ELIGIBILITY])
    window = plan.eligibility.max_days_since_purchase
    assert (number(window, locale) in eligibility) if window > 2 else True
    for country in plan.eligibility.countries:
        assert Locale.parse(locale).territories[country] in eligibility, (country, eligibility)

    [waiting] = clauses[Topic.WAITING]
    if plan.waiting_period_days:
        assert number(plan.waiting_period_days, locale) in waiting

    # The engine answers past_due_grace (not covered) while a renewal is unpaid: only plans
    # that bill again state the grace, with its days; an upfront plan has no payment to fail.
    if plan.billing is Billing.UPFRONT:
        assert Topic.GRACE not in clauses
    else:
        [grace] = clauses[Topic.GRACE]
        assert number(plan.grace_period_days, locale) in grace

    cancellation = plan.cancellation
    if cancellation.free_look_days:
        [free_look] = clauses[Topic.FREE_LOOK]
        assert number(cancellation.free_look_days, locale) in free_look
    [refund] = clauses[Topic.REFUND]
    fee = cancellation.fee(currency)
    if cancellation.pro_rata and fee.amount:
        assert format_money(fee, locale) in refund
    if not cancellation.pro_rata or not fee.amount:
        assert not any(ch.isdigit() for ch in refund), refund

    [renewal] = clauses[Topic.RENEWAL]
    assert number(plan.term_months, locale) in renewal or plan.term_months in (1, 2)
    assert has_term(renewal, locale, "plan"), renewal
    assert has_term(" ".join(clauses[Topic.COVERAGES]), locale, "covered")


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en"])
def test_every_clause_is_in_its_language(locale: str) -> None:
    for plan in PLANS:
        currency = plan.currencies()[0]
        english = {c.text for c in render_terms(plan, "en", currency)}
        assert not english & {c.text for c in render_terms(plan, locale, currency)}


def test_durations_take_the_form_their_count_needs() -> None:
    assert terms_module.duration(1, "months", "en") == "1 month"
    assert terms_module.duration(24, "months", "en") == "24 months"
    assert terms_module.duration(1, "days", "sv") == "1 dag"
    assert (
        terms_module.duration(2, "months", "ar") == "شهرين"
    )  # after خلال, بعد, أي, أول: the dual in its oblique case
    assert terms_module.duration(3, "days", "ar").endswith("أيام")
    assert terms_module.duration(30, "days", "ar").endswith("يومًا")


def test_a_grace_clause_never_promises_cover_while_unpaid() -> None:
    """The contradiction once found in the demo catalog: 'your cover continues for 14 days'."""
    monthly = next(p for p in PLANS if p.billing is Billing.MONTHLY)
    [grace] = by_topic(render_terms(monthly, "en", "USD"))[Topic.GRACE]
    assert "cover stops until it is paid" in grace
    assert "continues" not in grace


async def test_terms_are_stored_when_published_and_never_change_after(
    app: CoverlineApp, client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = PLANS[0]
    async with app.state.db.sessions() as session, session.begin():
        await PlanRepository(session).publish([plan])
    sold = render_terms(plan, "sv", "SEK")
    # A later release words a clause differently...
    monkeypatch.setitem(terms_module.TERMS, "terms_fixed", "Ends after {term}.")
    monkeypatch.setattr(terms_module, "translate", lambda locale, key, source: source)
    plan_store._terms.clear()
    async with app.state.db.sessions() as session:
        stored = await PlanRepository(session).terms(plan)
    # ...and what the published version says is what it said when it was sold.
    assert stored["sv"]["SEK"] == sold
    assert render_terms(plan, "sv", "SEK") != sold
