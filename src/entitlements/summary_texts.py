"""The texts Coverline writes itself, in English: the source messages of the gettext catalogs.

Each is marked with `N_(context, message)`; `make messages` extracts them (Babel) into
`locales/coverline.pot` and merges them into each language's `locales/<lang>/LC_MESSAGES/coverline.po`,
which translators edit in their usual tools. The words each language uses for Coverline's
concepts are chosen once, in `entitlements.glossary`.

Placeholders: {plan} plan name, {end} / {date} a formatted date, {incident} a coverage name,
{deductible} / {amount} formatted money, {count} a formatted number. Sentences avoid plural
forms so one text serves every count. Where a language's grammar needs it, its translation
quotes the plan's name after its word for "plan" (hi “{plan}” योजना, ar خطة «{plan}», vi gói “{plan}”),
so a name such as "… 3 years" never reads as part of the sentence.
"""

from __future__ import annotations

from entitlements.catalog import CoverageKind


def N_(context: str, message: str) -> tuple[str, str]:
    """Mark a message for extraction; it is translated when it is used."""
    return context, message


# The summary's sentences: key → English source.
SENTENCES: dict[str, str] = dict(
    [
        N_("covered", "Covered: {plan} protects this product until {end}."),
        N_("incident_covered", "{incident} is covered, with a deductible of {deductible}."),
        N_("incident_no_deductible", "{incident} is covered, with no deductible."),
        N_("claims_left", "Claims remaining: {count}."),
        N_("aggregate_left", "Up to {amount} remains for repairs under this plan."),
        N_("no_contract", "Not covered: no protection plan was found for this product."),
        N_("pending_payment", "Not covered yet: {plan} is waiting for its first payment."),
        N_("abandoned", "Not covered: the purchase of {plan} was never completed."),
        N_("not_yet_started", "Not covered yet: {plan} starts on {date}."),
        N_("waiting_period", "Not covered yet: {plan} is in its waiting period until {date}."),
        N_(
            "past_due_grace",
            "Not covered while payment is overdue: {plan} resumes if payment arrives by {date}.",
        ),
        N_("lapsed", "Not covered: {plan} lapsed because payment was not received."),
        N_("cancelled", "Not covered: {plan} was cancelled."),
        N_("chargeback", "Not covered: {plan} ended because its payment was reversed by the card issuer."),
        N_("expired", "Not covered: {plan} ended on {date}."),
        N_("coverage_not_included", "Not covered: {plan} does not include {incident}."),
        N_("limit_reached", "Not covered: {plan} has reached its claim limit."),
    ]
)

# Said before the summary to a caller, so they can check it is their product ({serial}: the
# serial or IMEI in groups of characters).
SPEECH_SENTENCES: dict[str, str] = dict(
    [
        N_("speech_serial", "Serial number {serial}."),
    ]
)

# The coverage kinds, as the summary names them.
INCIDENTS: dict[CoverageKind, str] = {
    CoverageKind.MECHANICAL_BREAKDOWN: N_("incident", "Mechanical or electrical breakdown")[1],
    CoverageKind.ACCIDENTAL_DAMAGE: N_("incident", "Accidental damage")[1],
    CoverageKind.SCREEN: N_("incident", "Screen repair")[1],
    CoverageKind.BATTERY: N_("incident", "Battery replacement")[1],
    CoverageKind.LIQUID_DAMAGE: N_("incident", "Liquid damage")[1],
    CoverageKind.THEFT_LOSS: N_("incident", "Theft and loss")[1],
    CoverageKind.POWER_SURGE: N_("incident", "Power surge damage")[1],
    CoverageKind.IN_HOME_SERVICE: N_("incident", "In-home service")[1],
}
