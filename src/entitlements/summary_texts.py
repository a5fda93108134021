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

from entitlements.catalog import BenefitKind, CoverageKind, SupportChannel, SupportLevel


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
        N_("benefit_left", "{benefit} included: {count} remaining."),
        N_("benefit_left_fee", "{benefit} included, for a fee of {fee} each: {count} remaining."),
        N_("support_level", "Support: {level}, by {channels}."),
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
        N_(
            "manufacturer_warranty",
            "Not covered by {plan} yet: the manufacturer's warranty covers {incident} until {date}.",
        ),
        N_(
            "after_warranty",
            "Not covered by {plan} yet: its cover for {incident} begins on {date}, when the manufacturer's"
            " warranty ends.",
        ),
        N_("limit_reached", "Not covered: {plan} has reached its claim limit."),
        N_("amount_reached", "Not covered: {plan} has no amount left for repairs."),
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

# The services a plan includes beyond repair, as the summary and the terms name them.
BENEFITS: dict[BenefitKind, str] = {
    BenefitKind.INSTALLATION: N_("benefit", "Installation")[1],
    BenefitKind.MAINTENANCE_VISIT: N_("benefit", "Maintenance visit")[1],
    BenefitKind.TECH_SUPPORT_SESSION: N_("benefit", "Technical support session")[1],
    BenefitKind.TRAINING_SESSION: N_("benefit", "Training session")[1],
    BenefitKind.BATTERY_REPLACEMENT: N_("benefit", "Battery replacement")[1],
    BenefitKind.SOFTWARE_SETUP: N_("benefit", "Software setup")[1],
}

# Support levels and channels, as a sentence names them mid-way.
SUPPORT_LEVELS: dict[SupportLevel, str] = {
    SupportLevel.STANDARD: N_("support_level_name", "standard")[1],
    SupportLevel.PRIORITY: N_("support_level_name", "priority")[1],
}
CHANNELS: dict[SupportChannel, str] = {
    SupportChannel.PHONE: N_("channel", "phone")[1],
    SupportChannel.CHAT: N_("channel", "chat")[1],
    SupportChannel.EMAIL: N_("channel", "email")[1],
    SupportChannel.ON_SITE: N_("channel", "a visit")[1],
}

# A plan's terms: each clause that states a rule is rendered from the plan's own fields
# (`entitlements.terms`), so the terms never promise what the engine does not do. Placeholders:
# {coverages} a list of coverage names, {incident} a coverage name, {amount} / {fee} formatted
# money, {count} a formatted number, {term} / {period} / {days} a duration (`DURATIONS`).
TERMS: dict[str, str] = dict(
    [
        N_("terms_coverages", "What is covered: {coverages}."),
        N_("terms_deductible", "{incident}: a deductible of {amount} for each claim."),
        N_("terms_no_deductible", "{incident}: no deductible."),
        N_("terms_claim_max", "{incident}: up to {amount} for each claim."),
        N_("terms_claims_term", "Claims: up to {count} in each term of {term}."),
        N_("terms_claims_rolling", "Claims: up to {count} in any {period}."),
        N_("terms_claims_unlimited", "Claims: no limit on their number."),
        N_("terms_benefit_term", "{benefit}: included, up to {count} in each term of {term}."),
        N_("terms_benefit_rolling", "{benefit}: included, up to {count} in any {period}."),
        N_("terms_benefit_fee", "{benefit}: a fee of {fee} each time."),
        N_("terms_benefit_visit", "{benefit}: a technician comes to you."),
        N_("terms_support", "Support: {level}, by {channels}."),
        N_("terms_aggregate", "Approved repairs never add up to more than the price paid for the product."),
        N_("terms_filing_window", "File each claim within {days} of the incident; a later claim is denied."),
        N_(
            "terms_waiting",
            "Waiting period: if you buy this plan after the day you bought the product, nothing "
            "that happens in its first {days} is covered.",
        ),
        N_("terms_no_waiting", "No waiting period."),
        N_("terms_purchase_window", "You can buy this plan up to {days} after buying the product."),
        N_("terms_purchase_same_day", "This plan is sold only on the day the product is bought."),
        N_("terms_countries", "Sold in: {countries}."),
        N_("terms_starts_after_warranty", "Cover begins when the manufacturer's warranty ends."),
        N_(
            "terms_coverage_after_warranty",
            "{incident}: covered from the day the manufacturer's warranty ends.",
        ),
        N_("terms_pays_upfront", "You pay once, at checkout."),
        N_("terms_pays_monthly", "You pay every month."),
        N_("terms_pays_annually", "You pay every year."),
        N_(
            "terms_grace",
            "If a payment fails, cover stops until it is paid: a payment within {days} covers the "
            "days in between again; after that the plan lapses.",
        ),
        N_(
            "terms_free_look",
            "Cancel within {days} of purchase for a full refund, if no claim was approved.",
        ),
        N_(
            "terms_pro_rata_fee",
            "Any other cancellation refunds the unused part of the current payment, less a "
            "cancellation fee of {fee}.",
        ),
        N_("terms_pro_rata", "Any other cancellation refunds the unused part of the current payment."),
        N_("terms_no_refund", "Any other cancellation refunds nothing."),
        N_("terms_renews", "The plan renews after each term of {term} until you cancel it."),
        N_("terms_fixed", "The plan ends after {term} and does not renew."),
    ]
)

# Durations, by CLDR plural category ("days:one" → "{count} day"): a language translates the
# categories it has (Arabic all six; Vietnamese only `other`) and may say one and two in words.
DURATIONS: dict[str, str] = dict(
    [
        N_("days:zero", "{count} days"),
        N_("days:one", "{count} day"),
        N_("days:two", "{count} days"),
        N_("days:few", "{count} days"),
        N_("days:many", "{count} days"),
        N_("days:other", "{count} days"),
        N_("months:zero", "{count} months"),
        N_("months:one", "{count} month"),
        N_("months:two", "{count} months"),
        N_("months:few", "{count} months"),
        N_("months:many", "{count} months"),
        N_("months:other", "{count} months"),
    ]
)

# Emails to the customer, in their language (`api.mail`). Placeholders: {name} the customer's
# name, {plan} the plan's name, {end} / {date} a formatted date, {contract} the contract's id,
# {amount} formatted money, {link} a URL.
EMAILS: dict[str, str] = dict(
    [
        N_("email_greeting", "Hello {name},"),
        N_("email_activated_subject", "Your {plan} is active"),
        N_(
            "email_activated_body",
            "Thank you: {plan} protects your product until {end}. Your contract number is "
            "{contract}; quote it whenever you contact us.",
        ),
        N_("email_activated_terms", "What your plan says:"),
        N_("email_renewal_subject", "{plan} renews on {date}"),
        N_(
            "email_renewal_body",
            "{plan} renews on {date}, and {amount} will be charged as before. If you do not want "
            "it to renew, cancel it before that day: one request to our customer service is enough.",
        ),
        N_("email_payment_failed_subject", "Your payment for {plan} did not go through"),
        N_(
            "email_payment_failed_body",
            "We could not take your payment for {plan}. Until it is paid, your product is not covered.",
        ),
        N_("email_payment_failed_link", "Pay here: {link}"),
        N_("email_ending_subject", "{plan} ends on {date}"),
        N_(
            "email_ending_body",
            "{plan} ends on {date}. After that day your product is no longer protected.",
        ),
        N_(
            "email_ending_offers",
            "A new plan is available for your product; contact us before that day to keep it protected.",
        ),
        N_("email_lead_subject", "Protect the product you bought"),
        N_("email_lead_body", "You can still add a protection plan to your purchase, until {date}."),
        N_("email_lead_link", "See the plans: {link}"),
        N_(
            "email_lead_unsubscribe",
            "You receive this because you agreed to hear from us. To receive no more offers: {link}",
        ),
        N_("email_getting_started_subject", "Getting started with {plan}"),
        N_(
            "email_getting_started_services",
            "Beyond repairs, {plan} includes these services: ask us whenever you need one.",
        ),
        N_("email_getting_started_training", "To get the most out of your product:"),
        N_("email_satisfaction_subject", "How did it go?"),
        N_("email_satisfaction_repair", "The repair under {plan} is done."),
        N_("email_satisfaction_service", "{service}, included in {plan}: done."),
        N_(
            "email_satisfaction_ask",
            "How did it go? Rate it from 1 to 5 and tell us what you think, until {date}: {link}",
        ),
        N_(
            "email_portal_link",
            "Your plans online (proof of coverage, claims, cancellation), for 7 days: {link}",
        ),
        N_("email_info_subject", "We need more to decide your claim"),
        N_("email_info_body", "To decide your claim under {plan}, we need from you: {what}."),
        N_("email_info_link", "Send it here, with no sign-in, until {date}: {link}"),
        N_("evidence_photo", "a photo of the damage"),
        N_("evidence_receipt", "the receipt"),
        N_("evidence_police_report", "the police report"),
        N_("evidence_description", "a description of what happened"),
        N_("unsubscribe_title", "Offers by email"),
        N_(
            "unsubscribe_ask", "Receive no more offers from us by email? Letters about your plans still come."
        ),
        N_("unsubscribe_button", "Receive no more offers"),
        N_("unsubscribe_done", "Done: you will receive no more offers. Letters about your plans still come."),
    ]
)

# The pages' own words (`api.pages`): the checkout widget, the demo merchant's checkout and the
# sandbox's payment page, and the customer portal. Placeholders: {price} / {amount} formatted
# money, {reference} a claim's reference, {status} a claim's status (`claim_status_*`).
PAGES: dict[str, str] = dict(
    [
        N_("widget_heading", "Protect your purchase"),
        N_("widget_none", "No protection"),
        N_("widget_billing_upfront", "{price}, paid once"),
        N_("widget_billing_monthly", "{price} a month"),
        N_("widget_billing_annual", "{price} a year"),
        N_("widget_terms", "What the plan says"),
        N_("widget_loading", "Loading the protection plans…"),
        N_("widget_unavailable", "The protection plans cannot be shown right now."),
        N_("demo_title", "Checkout"),
        N_("demo_cart", "Your cart"),
        N_("demo_name", "Your name"),
        N_("demo_email", "Email"),
        N_("demo_place_order", "Place the order"),
        N_("demo_done_title", "Thank you"),
        N_("demo_done", "Your order is complete."),
        N_("demo_done_plan", "Your protection plan is paid; its confirmation comes by email."),
        N_("sandbox_title", "Payment"),
        N_("sandbox_notice", "Sandbox: no real card is charged."),
        N_("sandbox_amount", "Amount to pay: {amount}"),
        N_("sandbox_card", "Test card"),
        N_("sandbox_card_pays", "A card that pays"),
        N_("sandbox_card_declined", "A card that is declined"),
        N_("sandbox_pay", "Pay"),
        N_("sandbox_declined", "The card was declined. Choose another card."),
        N_("sandbox_card_title", "Your payment card"),
        N_("sandbox_card_save", "Save the card"),
        N_("rate_title", "How did it go?"),
        N_("rate_about_repair", "The repair of your product"),
        N_("rate_question", "Your rating"),
        N_("rate_5", "5 — excellent"),
        N_("rate_4", "4 — good"),
        N_("rate_3", "3 — fair"),
        N_("rate_2", "2 — poor"),
        N_("rate_1", "1 — very poor"),
        N_("rate_comment", "Anything to add? (optional)"),
        N_("rate_send", "Send"),
        N_("rate_thanks", "Thank you: your answer is recorded."),
        N_("rate_review", "You can also tell other customers about your experience:"),
        N_("rate_review_link", "write a review"),
        N_("rate_link_refused", "This link has expired or was already used."),
        N_("portal_title", "Your protection plans"),
        N_("portal_no_plans", "You have no protection plans."),
        N_("portal_proof", "Proof of coverage"),
        N_("portal_print", "Print"),
        N_("portal_customer", "Customer"),
        N_("portal_plan", "Plan"),
        N_("portal_product", "Product"),
        N_("portal_serial", "Serial number"),
        N_("portal_contract", "Contract number"),
        N_("portal_covered_until", "Covered until"),
        N_("portal_terms", "What your plan says"),
        N_("portal_claim_title", "File a claim"),
        N_("portal_claim_what", "What happened"),
        N_("portal_claim_when", "When it happened"),
        N_("portal_claim_cost", "What the repair is expected to cost"),
        N_("portal_claim_describe", "Describe the problem"),
        N_("portal_claim_submit", "File the claim"),
        N_("portal_claims", "Your claims"),
        N_("portal_no_claims", "No claims yet."),
        N_("portal_claim_line", "Claim {reference}: {status}"),
        N_("claim_status_filed", "filed"),
        N_("claim_status_in_review", "being reviewed"),
        N_("claim_status_info_requested", "waiting for information from you"),
        N_("claim_status_approved", "approved"),
        N_("claim_status_denied", "denied"),
        N_("claim_status_fulfilled", "completed"),
        N_("claim_status_voided", "withdrawn"),
        N_("portal_cancel_title", "Cancel the plan"),
        N_("portal_cancel_quote", "If you cancel now, you get {amount} back."),
        N_("portal_cancel_button", "See what cancelling refunds"),
        N_("portal_cancel_confirm", "Cancel the plan and get {amount} back"),
        N_("portal_cancel_keep", "Keep the plan"),
        N_("portal_cancelled", "Your plan is cancelled. {amount} goes back to your card."),
        N_("portal_card_title", "Payment card"),
        N_("portal_card_update", "Update your card"),
        N_(
            "portal_card_english",
            "The card page is run by Stripe, our payment provider. It is not available in your "
            "language and opens in English.",
        ),
        N_("portal_sign_out", "Sign out"),
        N_("portal_link_refused", "This link has expired or is not valid. Ask us for a new one."),
        N_("page_refused", "This page cannot be shown."),
        # An error page's heading and, where the problem's own words are not in the visitor's
        # language, what it says.
        N_("error_title_form", "Please check what you sent"),
        N_("error_title_refused", "Not allowed"),
        N_("error_title_not_found", "Not found"),
        N_("error_title_conflict", "Not possible now"),
        N_("error_title_busy", "Too many requests"),
        N_("error_title_server", "Something went wrong on our side"),
        N_("error_title_other", "This page cannot be shown"),
        N_("error_form", "Something in the form is not right. Go back, check it and send it again."),
        N_("error_conflict", "This cannot be done while the plan is in its present state."),
        N_("error_busy", "Please wait a minute and try again."),
        N_("error_server", "Please try again in a few minutes."),
    ]
)
