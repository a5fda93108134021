from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard
from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.keys import PUBLISHABLE, Scope
from api.views import LOCALE_MAX, IdempotencyKey, Priced, caller_locale
from entitlements import published
from entitlements.catalog import (
    DEFAULT_LOCALE,
    Billing,
    ClaimLimits,
    CoverageKind,
    CoverageStart,
    Ineligibility,
)
from entitlements.errors import InvalidInput
from entitlements.offers.rules import OfferedProduct, quote_plans
from entitlements.outreach import lead_for_offer
from entitlements.terms import Clause


class OfferRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The product in the cart, or a lead's token in its place (from an `offer.lead` event)."""

    product: OfferedProduct | None = None
    lead_token: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    locale: Annotated[str, msgspec.Meta(max_length=LOCALE_MAX)] | None = None


class OfferedPlan(msgspec.Struct, frozen=True):
    code: str
    version: int
    name: str
    summary: str
    terms: str  # the plan's own words: what no field states (exclusions, how to claim)
    clauses: list[Clause]  # the rules, in the product's currency, as rendered when published
    billing: Billing
    term_months: int
    auto_renew: bool
    coverage_start: CoverageStart


class OfferedCoverage(msgspec.Struct, frozen=True):
    kind: CoverageKind
    deductible: Priced


class OfferedCancellation(msgspec.Struct, frozen=True):
    free_look_days: int
    pro_rata: bool
    fee: Priced


class Offer(msgspec.Struct, frozen=True):
    offer_id: str
    offer_token: str
    expires_at: dt.datetime
    plan: OfferedPlan
    price: Priced
    coverages: list[OfferedCoverage]
    waiting_period_days: int
    claim_limits: ClaimLimits
    cancellation: OfferedCancellation


class IneligiblePlan(msgspec.Struct, frozen=True):
    plan_code: str
    plan_version: int
    name: str
    reason: Ineligibility


class OfferSet(msgspec.Struct, frozen=True):
    locale: str
    offers: list[Offer]
    ineligible: list[IneligiblePlan]


EXAMPLE = {
    "product": {
        "category": "phone",
        "sku": "PH-GALAXY-A55",
        "price": {"amount": 2499000, "currency": "PHP"},
        "purchase_date": "2026-11-23",
        "country": "PH",
    },
    "locale": "fil",
}


class OfferController(Controller):
    path = "/v1/offers"
    tags = ["offers"]
    guards = [access_guard]
    opt = {"access": frozenset({PUBLISHABLE, Scope.CHECKOUT, Scope.ADMIN})}

    @post(
        summary="Eligible plans for the product in the cart, each with a signed offer",
        description=(
            "Prices are in the product's currency and texts in the caller's language "
            "(`locale`, else `Accept-Language`, else English). Plans that cannot be sold for "
            "this product come back under `ineligible` with the reason."
        ),
        status_code=200,
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 429),
    )
    async def create_offers(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: Annotated[
            OfferRequest,
            Body(examples=[Example(summary="A phone in Manila, terms in Tagalog", value=EXAMPLE)]),
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OfferSet]:
        locale = caller_locale(request, data.locale)
        now = dt.datetime.now(dt.UTC)
        if (data.product is None) == (data.lead_token is None):
            raise InvalidInput("give the product, or a lead_token in its place", field="product")
        lead_id, product = None, data.product
        if data.lead_token is not None:
            lead_id, product = await lead_for_offer(db_session, data.lead_token, now)
        assert product is not None
        quotes, declined = quote_plans(
            await published.latest(db_session),
            product,
            locale=locale,
            keyring=services.settings.offer_keys,
            now=now,
            ttl=dt.timedelta(seconds=services.settings.offer_ttl_seconds),
            lead_id=lead_id,
        )
        currency = product.price.currency
        offers = []
        for quote in quotes:
            plan, text = quote.plan, quote.plan.text(locale)
            terms = await published.terms(db_session, plan)
            offers.append(
                Offer(
                    offer_id=quote.terms.offer_id,
                    offer_token=quote.token,
                    expires_at=dt.datetime.fromtimestamp(quote.terms.expires_at, dt.UTC),
                    plan=OfferedPlan(
                        plan.code,
                        plan.version,
                        text.name,
                        text.summary,
                        text.terms,
                        (terms.get(locale) or terms[DEFAULT_LOCALE])[currency],
                        plan.billing,
                        plan.term_months,
                        plan.auto_renew,
                        plan.coverage_start,
                    ),
                    price=Priced.of(quote.terms.price, locale),
                    coverages=[
                        OfferedCoverage(c.kind, Priced.of(c.deductible(currency), locale))
                        for c in plan.coverages
                    ],
                    waiting_period_days=quote.terms.waiting_period_days,
                    claim_limits=plan.claim_limits,
                    cancellation=OfferedCancellation(
                        plan.cancellation.free_look_days,
                        plan.cancellation.pro_rata,
                        Priced.of(plan.cancellation.fee(currency), locale),
                    ),
                )
            )
        ineligible = [
            IneligiblePlan(d.plan.code, d.plan.version, d.plan.text(locale).name, d.reason) for d in declined
        ]
        return Response(OfferSet(locale, offers, ineligible), headers={"content-language": locale})
