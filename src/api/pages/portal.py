"""/portal: the customer's own page, reached by a signed link (`POST /v1/customers/{id}/portal-links`,
and the letters) that lasts 7 days. The link is exchanged at once for a session cookie and the
browser sent on to a URL without it; no page here sends a Referer. The customer reads their proof
of coverage with the terms of the plan version they bought, files a claim and follows it,
cancels with the refund shown first, and replaces their card on Stripe's page, all in their own
language."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from api.dependencies import Injected, Services
from api.links import PORTAL, subject_of
from api.pages.common import (
    PAGE_ERRORS,
    PAGE_LOCALE,
    FormData,
    cancel_from_page,
    page,
    page_locale,
    visitor_locale,
    words,
)
from api.pages.forms import accepted_refund, claim_input
from api.pages.security import check_csrf, close_session, current_session, open_session
from api.pages.shop import hosted_page_url
from billing.cancellation.service import Quoted, quote_refund, refunded
from entitlements import published
from entitlements.catalog import DEFAULT_LOCALE
from entitlements.claims import service as claims
from entitlements.clock import utcnow
from entitlements.contracts import service as use_cases
from entitlements.customers import service as customers
from entitlements.errors import NotFound
from entitlements.localization import fill, format_day, format_money
from entitlements.products import service as products
from entitlements.summaries import how_it_ended
from entitlements.summary_texts import INCIDENTS
from entitlements.translations import translate
from entitlements.zones import UTC, local_day

# Stripe's hosted pages have no Arabic or Hindi: these customers are told the card page is English.
NO_STRIPE_PAGE = frozenset({"ar", "hi"})


def _refused(locale: str) -> PermissionDeniedException:
    return PermissionDeniedException(words(locale)["portal_link_refused"])


async def _customer(session: AsyncSession, request: Request[Any, Any, Any]) -> Any:
    found = await current_session(session, request, "portal", utcnow())
    if found is None or found.customer_id is None:
        raise _refused(visitor_locale(request))  # no session says whose language: the browser's
    customer = await customers.customer(session, found.customer_id)
    request.state[PAGE_LOCALE] = _locale(customer)  # an error on this request is in theirs too
    return customer


async def _own_contract(session: AsyncSession, customer: Any, contract_id: str) -> Any:
    contract = await use_cases.contract(session, contract_id)
    if contract.customer_id != customer.id:
        raise NotFound(f"no contract {contract_id}", field="contract_id")
    return contract


def _locale(customer: Any) -> str:
    return page_locale(customer.locale)


async def _proofs(session: AsyncSession, customer: Any, locale: str) -> list[dict[str, Any]]:
    """Each contract the customer holds, as its proof of coverage shows it."""
    contracts = await use_cases.contracts_held(session, customer.id)
    t = words(locale)
    proofs = []
    for contract in contracts:
        plan = await use_cases.contract_plan(session, contract)
        product = await products.product(session, contract.product_id)
        terms = await published.terms(session, plan)
        clauses = (terms.get(locale) or terms[DEFAULT_LOCALE]).get(contract.currency, [])
        rows, _ = await claims.list_claims(
            session, status=None, contract_id=contract.id, cursor=None, limit=50
        )
        periods = await use_cases.contract_periods(session, contract.id)
        ends = contract.ended_at or max((p.end for p in periods), default=None)
        until = format_day(local_day(ends, customer.time_zone or UTC), locale) if ends else "—"
        proofs.append(
            {
                "contract": contract,
                "plan_name": plan.text(locale).name,
                "product": product,
                "until": until,
                # An ended contract still shows (and prints) what it covered, saying how it ended.
                "ended": how_it_ended(contract.status, plan.text(locale).name, until, locale),
                "terms": [c.text for c in clauses],
                "incidents": [
                    (c.kind.value, translate(locale, "incident", INCIDENTS[c.kind])) for c in plan.coverages
                ],
                "claims": [
                    (
                        row.reference,
                        fill(
                            t["portal_claim_line"],
                            reference=row.reference,
                            status=t.get(f"claim_status_{row.status}", row.status),
                        ),
                    )
                    for row in rows
                ],
                "active": contract.status in ("active", "past_due"),
            }
        )
    return proofs


class PortalController(Controller):
    path = "/portal"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get()
    async def home(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        notice: FromQuery[str | None] = None,
        contract: FromQuery[str | None] = None,
    ) -> Response[str]:
        customer = await _customer(db_session, request)
        given_back = None
        if notice == "cancelled" and contract:  # what the ledger holds as refunded, never a link's word
            ended = await _own_contract(db_session, customer, contract)
            given_back = format_money(await refunded(db_session, ended.id), _locale(customer))
        return await self._home(request, db_session, customer, notice, refunded=given_back)

    async def _home(
        self,
        request: Request[Any, Any, Any],
        session: AsyncSession,
        customer: Any,
        notice: str | None,
        quote: tuple[Quoted, str] | None = None,
        refunded: str | None = None,
    ) -> Response[str]:
        locale = _locale(customer)
        return page(
            request,
            "portal/home.html",
            locale,
            customer=customer,
            proofs=await _proofs(session, customer, locale),
            notice=notice,
            quote=quote,
            refunded=refunded,
            card=customer.stripe_customer_id is not None,
            card_english=locale in NO_STRIPE_PAGE,
            today=local_day(utcnow(), customer.time_zone or UTC).isoformat(),  # the customer's day
        )

    @get("/{token:str}", status_code=303)
    async def open_link(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        token: FromPath[str],
    ) -> Response[Any]:
        """The link from the letter: exchanged for a session, then away from the URL that holds it."""
        now = utcnow()
        customer_id = subject_of(services.settings, PORTAL, token, now)
        if customer_id is None:
            raise _refused(visitor_locale(request))
        customer = await customers.customer(db_session, customer_id)
        response: Response[Any] = Redirect("/portal", status_code=303)
        await open_session(
            db_session,
            response,
            request,
            kind="portal",
            seconds=services.settings.portal_session_seconds,
            now=now,
            locale=_locale(customer),
            customer_id=customer.id,
        )
        return response

    @post("/claims", status_code=303)
    async def file_claim(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], data: FormData
    ) -> Redirect:
        check_csrf(request, data)
        customer = await _customer(db_session, request)
        contract = await _own_contract(db_session, customer, data.get("contract_id", ""))
        claim = claim_input(
            data,
            source="portal",
            contract_id=contract.id,
            currency=contract.currency,
            customer_id=customer.id,
        )
        await claims.file_claim(db_session, claim, actor="portal", agent="customer", now=utcnow())
        return Redirect("/portal?notice=claim", status_code=303)

    @post("/contracts/{contract_id:str}/quote")
    async def quote(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        contract_id: FromPath[str],
        data: FormData,
    ) -> Response[str]:
        check_csrf(request, data)
        customer = await _customer(db_session, request)
        contract = await _own_contract(db_session, customer, contract_id)
        quoted = await quote_refund(db_session, contract.id, utcnow())
        shown = format_money(quoted.quote.amount, _locale(customer))
        return await self._home(request, db_session, customer, None, quote=(quoted, shown))

    @post("/contracts/{contract_id:str}/cancel", status_code=303)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        contract_id: FromPath[str],
        data: FormData,
    ) -> Redirect:
        check_csrf(request, data)
        customer = await _customer(db_session, request)
        contract = await _own_contract(db_session, customer, contract_id)
        expected = accepted_refund(data, contract.currency)
        await cancel_from_page(db_session, services, contract.id, expected, "portal")
        return Redirect(f"/portal?notice=cancelled&contract={contract.id}", status_code=303)

    @post("/card", status_code=303)
    async def card(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: FormData,
    ) -> Redirect:
        check_csrf(request, data)
        customer = await _customer(db_session, request)
        if customer.stripe_customer_id is None:
            raise NotFoundException("no card is on file")
        stripe_customer, locale = customer.stripe_customer_id, _locale(customer)
        await db_session.commit()  # nothing held open while Stripe is asked
        url = await services.gateway.card_page(
            stripe_customer, return_url=f"{str(request.base_url).rstrip('/')}/portal", locale=locale
        )
        return Redirect(hosted_page_url(url, locale), status_code=303)

    @post("/sign-out", status_code=303)
    async def sign_out(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], data: FormData
    ) -> Response[str]:
        check_csrf(request, data)
        customer = await _customer(db_session, request)
        await close_session(db_session, request, "portal")
        return page(request, "portal/signed_out.html", _locale(customer))
