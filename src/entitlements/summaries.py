"""One paragraph, in the caller's language, that an agent or a bot can read out."""

from __future__ import annotations

import datetime as dt
import re

from entitlements.coverage import Decision, Reason
from entitlements.localization import format_day, format_money, format_number
from entitlements.summary_texts import INCIDENTS, SENTENCES
from entitlements.translations import translate

_DOUBLE_STOP = re.compile("\\.([\u200e\u200f]?)\\.")


def _sentence(key: str, locale: str, **values: str) -> str:
    template = translate(locale, key, SENTENCES[key])
    incident = values.get("incident")
    if incident and not template.startswith("{incident}"):
        values["incident"] = incident[:1].lower() + incident[1:]  # a name mid-sentence
    # An amount that ends in an abbreviation's stop ("ر.س.") ends the sentence too: one stop.
    return _DOUBLE_STOP.sub(r".\1", template.format(**values))


def summarize(
    decision: Decision,
    locale: str,
    *,
    plan_name: str | None,
    starts_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
) -> str:
    incident = translate(locale, "incident", INCIDENTS[decision.incident]) if decision.incident else ""
    plan = plan_name or ""

    def day(value: dt.datetime | None) -> str:
        return format_day(value.date(), locale) if value else ""

    if not decision.covered:
        reason = decision.reason or Reason.NO_CONTRACT
        date = {
            Reason.NOT_YET_STARTED: starts_at,
            Reason.WAITING_PERIOD: decision.waiting_until,
            Reason.PAST_DUE_GRACE: decision.grace_until,
            Reason.EXPIRED: ended_at,
        }.get(reason)
        return _sentence(reason.value, locale, plan=plan, date=day(date), incident=incident)

    parts = [_sentence("covered", locale, plan=plan, end=day(decision.period_end))]
    if decision.incident is not None:
        if decision.deductible is not None and decision.deductible.amount > 0:
            parts.append(
                _sentence(
                    "incident_covered",
                    locale,
                    incident=incident,
                    deductible=format_money(decision.deductible, locale),
                )
            )
        else:
            parts.append(_sentence("incident_no_deductible", locale, incident=incident))
    if decision.remaining_claims is not None:
        parts.append(_sentence("claims_left", locale, count=format_number(decision.remaining_claims, locale)))
    if decision.remaining_aggregate is not None:
        parts.append(
            _sentence("aggregate_left", locale, amount=format_money(decision.remaining_aggregate, locale))
        )
    return " ".join(parts)
