"""The reviewed corpus: every text Coverline writes, per language, as files under `docs/texts/`.

`coverline texts` writes them; a test writes them again and fails on any difference, so a changed
sentence reaches review as a diff. Per language:
- `summaries/<lang>.md`: every summary variant (each reason for no cover, cover with each part),
  on screen, for the ear and as SSML;
- `terms/<lang>.md`: every catalog plan's name, summary, own words and rule clauses, in the
  currency that language's customers pay in.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from entitlements.catalog import LOCALES, BenefitKind, ClaimWindow, CoverageKind, Plan
from entitlements.coverage import BenefitLeft, ContractStatus, Decision, Reason
from entitlements.money import Money
from entitlements.summaries import speak, summarize
from entitlements.terms import render_terms

# The currency each language's sample customer pays in.
CURRENCY = {"en": "USD", "fil": "PHP", "hi": "INR", "sv": "SEK", "ar": "SAR", "vi": "VND"}
# Their clocks, east of UTC so that the sample's instants fall on the same days (a voice is
# chosen for where the customer lives: ar-SA, not Arabic's likeliest region, Egypt).
CLOCK = {
    "fil": "Asia/Manila",
    "hi": "Asia/Kolkata",
    "sv": "Europe/Stockholm",
    "ar": "Asia/Riyadh",
    "vi": "Asia/Ho_Chi_Minh",
}
AT = dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC)
END = dt.datetime(2028, 3, 5, tzinfo=dt.UTC)
SERIAL = "R58N4XK2"
ACTIVE = ContractStatus.ACTIVE
COVERED_WITH_DEDUCTIBLE = "covered, an incident with a deductible, claims and an aggregate left"
HEADER = "<!-- Written by `coverline texts`; a test fails when this file differs from what it writes. -->\n"


def _currency(locale: str, plan: Plan | None = None) -> str:
    wanted = CURRENCY.get(locale, "USD")
    if plan is None or wanted in plan.currencies():
        return wanted
    return plan.currencies()[0]


def summary_variants(currency: str, deductible: int | None = None) -> list[tuple[str, Decision]]:
    """Every summary a check can give, named: each reason for no cover (about a power surge; under
    the manufacturer's warranty, about a breakdown it repairs, and a power surge it does not), and
    cover with each part. `deductible` in minor units (default a whole amount)."""
    amount = Money(deductible if deductible is not None else 9900 if currency != "VND" else 490_000, currency)
    variants = [
        (
            reason.value,
            Decision(
                False,
                reason,
                "ctr_sample",
                ACTIVE,
                AT,
                incident=CoverageKind.MECHANICAL_BREAKDOWN
                if reason is Reason.MANUFACTURER_WARRANTY
                else CoverageKind.POWER_SURGE,
                waiting_until=END,
                grace_until=END,
                warranty_until=END if reason is Reason.MANUFACTURER_WARRANTY else None,
                remaining_claims=0 if reason is Reason.LIMIT_REACHED else None,
            ),
        )
        for reason in Reason
    ]
    variants.append(
        (
            "limit_reached, the amount for repairs spent (claims of any number)",
            Decision(
                False,
                Reason.LIMIT_REACHED,
                "ctr_sample",
                ACTIVE,
                AT,
                incident=CoverageKind.POWER_SURGE,
                remaining_aggregate=Money(0, currency),
            ),
        )
    )
    variants.append(
        (
            "manufacturer_warranty, for a kind it does not repair",
            Decision(
                False,
                Reason.MANUFACTURER_WARRANTY,
                "ctr_sample",
                ACTIVE,
                AT,
                incident=CoverageKind.POWER_SURGE,
                warranty_until=END,
            ),
        )
    )
    variants += [
        (
            COVERED_WITH_DEDUCTIBLE,
            Decision(
                True,
                None,
                "ctr_sample",
                ACTIVE,
                AT,
                incident=CoverageKind.SCREEN,
                deductible=amount,
                remaining_claims=1,
                remaining_aggregate=Money(amount.amount * 20, currency),
                period_end=END,
            ),
        ),
        (
            "covered, an incident with no deductible",
            Decision(True, None, "ctr_sample", ACTIVE, AT, incident=CoverageKind.BATTERY, period_end=END),
        ),
        ("covered, no incident asked", Decision(True, None, "ctr_sample", ACTIVE, AT, period_end=END)),
        (
            "covered, with services included beyond repair",
            Decision(
                True,
                None,
                "ctr_sample",
                ACTIVE,
                AT,
                period_end=END,
                benefits=(
                    BenefitLeft(
                        BenefitKind.TECH_SUPPORT_SESSION, 2, ClaimWindow.ROLLING_12_MONTHS, 1, None, False
                    ),
                    BenefitLeft(
                        BenefitKind.MAINTENANCE_VISIT,
                        1,
                        ClaimWindow.TERM,
                        1,
                        Money(amount.amount // 2, currency),
                        True,
                    ),
                ),
            ),
        ),
    ]
    return variants


def summaries_page(locale: str, plan_name: str) -> str:
    currency = CURRENCY.get(locale, "USD")
    lines = [
        HEADER,
        f"# Summaries — {locale}\n",
        f"\nPlan: {plan_name} (its name only: the amounts, counts and services below are samples, not"
        f" that plan's terms) · currency {currency}\n",
    ]
    for name, decision in summary_variants(currency):
        clock = CLOCK.get(locale, "UTC")
        screen = summarize(
            decision, locale, plan_name=plan_name, starts_at=END, ended_at=END, time_zone=clock
        )
        speech = speak(
            decision, locale, plan_name=plan_name, starts_at=END, ended_at=END, serial=SERIAL, time_zone=clock
        )
        lines += [
            f"\n## {name}\n",
            f"\nScreen: {screen}\n",
            f"\nSpeech: {speech.text}\n",
            f"\nSSML: `{speech.ssml}`\n",
        ]
    return "".join(lines)


def terms_page(locale: str, plans: list[Plan]) -> str:
    lines = [HEADER, f"# Plan terms — {locale}\n"]
    for plan in sorted(plans, key=lambda p: p.code):
        text, currency = plan.text(locale), _currency(locale, plan)
        lines += [
            f"\n## {plan.code} v{plan.version}: {text.name}\n",
            f"\n{text.summary}\n",
            f"\nThe plan's own words: {text.terms}\n",
            f"\nRules ({currency}):\n\n",
            *(f"- {clause.text}\n" for clause in render_terms(plan, locale, currency)),
        ]
    return "".join(lines)


def corpus(plans: list[Plan]) -> dict[str, str]:
    """Relative path → content, for every language."""
    sample = next((p for p in plans if p.code == "phone-protect-24"), plans[0])
    pages: dict[str, str] = {}
    for locale in LOCALES:
        pages[f"summaries/{locale}.md"] = summaries_page(locale, sample.text(locale).name)
        pages[f"terms/{locale}.md"] = terms_page(locale, plans)
    return pages


def write_corpus(plans: list[Plan], out: Path) -> list[Path]:
    written = []
    for relative, content in corpus(plans).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
