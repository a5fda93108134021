"""/console: the support desk's screen. An agent signs in with a support (or admin) key and their
own name; the key stays on the server side of the sign-in (the session row names it, the cookie
holds a random value). They find a product however the caller reads its serial, see whether and
how it is covered, file a claim, quote and cancel, and transfer it; each action is audited with
their name."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, authenticate
from api.database import Database
from api.dependencies import Injected, Services
from api.keys import Scope, hash_key
from api.pages.common import PAGE_ERRORS, FormData, cancel_from_page, page, page_locale
from api.pages.forms import accepted_refund, claim_input
from api.pages.security import check_csrf, close_session, current_session, open_session
from api.routes.entitlements import ProductEntitlementView, answer_lookups
from api.tables import ApiKeyRow, PageSessionRow
from billing.cancellation.service import quote_refund
from entitlements.catalog import CoverageKind
from entitlements.checks.service import Lookup
from entitlements.claims import service as claims
from entitlements.clock import utcnow
from entitlements.contracts import service as use_cases
from entitlements.contracts.service import transfer_contract
from entitlements.customers import service as customers
from entitlements.customers.service import find_customers
from entitlements.errors import DomainError, InvalidInput
from entitlements.identifiers import clean_text
from entitlements.products import service as products
from entitlements.translations import languages
from entitlements.zones import UTC, local_day, zone

DESK_SCOPES = frozenset({Scope.SUPPORT.value, Scope.ADMIN.value})
SIGN_IN = "/console/sign-in"
_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,36}$")
_CONTRACT_ID = re.compile(r"^ctr_[A-Za-z0-9]{1,36}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,24}$")


async def _signed_in(session: AsyncSession, request: Request[Any, Any, Any]) -> PageSessionRow | None:
    """The agent's session, while it lasts and its key is neither revoked nor stripped of the
    desk's scopes."""
    found = await current_session(session, request, "console", utcnow())
    if found is None or found.key_id is None:
        return None
    key = await session.get(ApiKeyRow, found.key_id)
    if key is None or key.revoked_at is not None or not DESK_SCOPES & set(key.scopes.split()):
        return None
    return found


async def _agent_form(
    session: AsyncSession, request: Request[Any, Any, Any], form: dict[str, str]
) -> PageSessionRow | None:
    """The signed-in agent a form comes from, once its CSRF token is checked; None: sign in."""
    check_csrf(request, form)
    return await _signed_in(session, request)


def _sign_in(typed: str, principal: Principal | None) -> tuple[str, Principal]:
    """The agent's name as stored, checked as the API checks its Coverline-Agent header (no
    direction marks, no control characters), and their desk key; else InvalidInput naming the
    field at fault."""
    if not typed:
        raise InvalidInput("Give your own name: every action is recorded with it.", field="agent")
    try:
        agent = clean_text(typed, "your name", claims.AGENT_LENGTH)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="agent") from None
    if principal is None:
        raise InvalidInput("That key is not valid.", field="key")
    if not {s.value for s in principal.scopes} & DESK_SCOPES:
        raise InvalidInput("That key has no support scope.", field="key")
    return agent, principal


async def _agent_did(
    session: AsyncSession,
    agent: PageSessionRow,
    entity: str,
    entity_id: str,
    did: str,
    **changes: Any,
) -> None:
    assert agent.key_id is not None
    await use_cases.agent_did(session, entity, entity_id, agent.key_id, agent.agent, did, **changes)


async def _coverages(session: AsyncSession, contract_id: str) -> dict[str, dict[str, Any]]:
    """Each coverage of the plan version a contract was sold under, by kind: its deductible and
    the most it pays for one claim, in the contract's currency, and when it begins."""
    contract = await use_cases.contract(session, contract_id)
    plan = await use_cases.contract_plan(session, contract)
    return {
        coverage.kind.value: {
            "deductible": coverage.deductible(contract.currency),
            "most_per_claim": coverage.most_per_claim(contract.currency),
            "starts": coverage.starts,
        }
        for coverage in plan.coverages
    }


async def _search(
    db: Database, session: AsyncSession, query: str, locale: str | None
) -> list[ProductEntitlementView]:
    """Every product the query could mean: a serial or IMEI as typed, an order, a contract, or
    its customer's email, phone, id or name."""
    lookups = [Lookup(serial=query), Lookup(order_ref=query)]
    digits = re.sub(r"[\s-]", "", query)
    if digits.isdigit() and len(digits) in (14, 15):
        lookups.append(Lookup(imei=query))
    if _CONTRACT_ID.match(query):
        lookups.append(Lookup(contract_id=query))
    if _CUSTOMER_ID.match(query):
        lookups.append(Lookup(customer_id=query))
    people = []
    try:
        if "@" in query:
            people = await find_customers(session, external_ref=None, email=query, phone=None)
        elif _PHONE.match(query):
            people = await find_customers(session, external_ref=None, email=None, phone=query)
        if not people and len(query) >= 2 and not _PHONE.match(query):
            people = await find_customers(session, external_ref=None, email=None, phone=None, name=query)
    except DomainError:
        people = []  # not an email or a phone number after all
    lookups += [Lookup(customer_id=c.id) for c in people[:20]]
    found: dict[str, ProductEntitlementView] = {}
    for lookup in lookups:
        try:
            [answer] = await answer_lookups(db, [lookup], utcnow(), None, locale)
        except DomainError:
            continue  # this reading of the query is not a valid lookup: the others may be
        for product in answer.products:
            found.setdefault(product.product_id, product)
    return list(found.values())


class ConsoleController(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/sign-in")
    async def sign_in_page(self, request: Request[Any, Any, Any]) -> Response[str]:
        return page(request, "console/sign_in.html", error=None)

    @post("/sign-in", status_code=303)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        data: FormData,
    ) -> Response[Any]:
        check_csrf(request, data)
        typed = " ".join(data.get("agent", "").split())
        raw_key = data.get("key", "").strip()
        principal = await authenticate(services.db, hash_key(raw_key)) if raw_key else None
        try:
            agent, principal = _sign_in(typed, principal)
        except InvalidInput as exc:
            return page(
                request,
                "console/sign_in.html",
                status_code=401,
                error=exc.detail,
                error_field=exc.field,
                typed=typed,
            )
        response: Response[Any] = Redirect("/console", status_code=303)
        await open_session(
            db_session,
            response,
            request,
            kind="console",
            seconds=services.settings.console_session_seconds,
            now=utcnow(),
            locale="en",
            key_id=principal.key_id,
            agent=agent,
        )
        await use_cases.agent_did(db_session, "api_key", principal.key_id, principal.key_id, agent, "sign_in")
        return response

    @post("/sign-out", status_code=303)
    async def sign_out(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], data: FormData
    ) -> Redirect:
        check_csrf(request, data)
        agent = await _signed_in(db_session, request)
        if agent is not None:
            await _agent_did(db_session, agent, "api_key", agent.key_id or "", "sign_out")
        await close_session(db_session, request, "console")
        return Redirect(SIGN_IN, status_code=303)

    @get()
    async def search(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        q: FromQuery[str | None] = None,
        locale: FromQuery[str | None] = None,
    ) -> Response[Any]:
        agent = await _signed_in(db_session, request)
        if agent is None:
            return Redirect(SIGN_IN, status_code=303)
        query = " ".join((q or "").split())[:128]
        asked = page_locale(locale) if locale else None
        results = await _search(services.db, db_session, query, asked) if query else []
        names = {r.customer_id: (await customers.customer(db_session, r.customer_id)).name for r in results}
        return page(
            request,
            "console/search.html",
            agent=agent,
            query=query,
            results=results,
            names=names,
            searched=bool(query),
            languages=languages(),
            asked=asked,
        )

    @get("/products/{product_id:str}")
    async def product_card(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        product_id: FromPath[str],
        locale: FromQuery[str | None] = None,
        incident: FromQuery[str | None] = None,
        notice: FromQuery[str | None] = None,
    ) -> Response[Any]:
        agent = await _signed_in(db_session, request)
        if agent is None:
            return Redirect(SIGN_IN, status_code=303)
        return await self._card(request, services.db, db_session, agent, product_id, locale, incident, notice)

    async def _card(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        session: AsyncSession,
        agent: PageSessionRow,
        product_id: str,
        locale: str | None,
        incident: str | None,
        notice: str | None,
        quote: Any = None,
    ) -> Response[str]:
        product = await products.product(session, product_id)
        customer = await customers.customer(session, product.customer_id)
        asked = page_locale(locale, page_locale(customer.locale))
        kind = CoverageKind(incident) if incident in {k.value for k in CoverageKind} else None
        now = utcnow()  # the support targets are those of a case opened now, on this call
        [answer] = await answer_lookups(db, [Lookup(customer_id=customer.id)], now, kind, asked, now)
        view = next(p for p in answer.products if p.product_id == product.id)
        contract_ids = [c.contract_id for c in view.contracts]
        claim_rows = []
        for contract_id in contract_ids:
            rows, _ = await claims.list_claims(
                session, status=None, contract_id=contract_id, cursor=None, limit=50
            )
            claim_rows += rows
        history = await use_cases.history(session, [product.id, *contract_ids, *(c.id for c in claim_rows)])
        coverages = {contract_id: await _coverages(session, contract_id) for contract_id in contract_ids}
        return page(
            request,
            "console/product.html",
            agent=agent,
            product=product,
            customer=customer,
            view=view,
            speech=answer.speech if len(answer.products) == 1 else None,
            asked=asked,
            summary_dir="rtl" if asked == "ar" else "ltr",
            languages=languages(),
            incidents=[k.value for k in CoverageKind],
            incident=kind.value if kind else "",
            claims=claim_rows,
            coverages=coverages,
            history=list(reversed(history)),
            notice=notice,
            quote=quote,
            today=local_day(now, customer.time_zone or UTC).isoformat(),  # the customer's day
            zone=zone,
            # Each date on the card is the customer's day, as the summary and the portal say it
            # (a period ending 23:50 UTC ends the next day in Riyadh).
            local_day=lambda at: local_day(at, customer.time_zone or UTC),
            customer_zone=customer.time_zone or UTC,
        )

    @post("/contracts/{contract_id:str}/claims", status_code=303)
    async def file_claim(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        contract_id: FromPath[str],
        data: FormData,
    ) -> Response[Any]:
        agent = await _agent_form(db_session, request, data)
        if agent is None:
            return Redirect(SIGN_IN, status_code=303)
        contract = await use_cases.contract(db_session, contract_id)
        claim_in = claim_input(data, source="console", contract_id=contract.id, currency=contract.currency)
        now = utcnow()
        claim = await claims.file_claim(
            db_session, claim_in, actor=agent.key_id or "", agent=agent.agent, now=now
        )
        await _agent_did(db_session, agent, "claim", claim.id, "file_claim")
        return Redirect(
            f"/console/products/{contract.product_id}?notice=claim-{claim.status}", status_code=303
        )

    @post("/contracts/{contract_id:str}/refund-quote")
    async def refund_quote(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        contract_id: FromPath[str],
        data: FormData,
    ) -> Response[Any]:
        agent = await _agent_form(db_session, request, data)
        if agent is None:
            return Redirect(SIGN_IN, status_code=303)
        quoted = await quote_refund(db_session, contract_id, utcnow())
        return await self._card(
            request,
            services.db,
            db_session,
            agent,
            quoted.contract.product_id,
            None,
            None,
            None,
            quote=quoted,
        )

    @post("/contracts/{contract_id:str}/cancel", status_code=303)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        contract_id: FromPath[str],
        data: FormData,
    ) -> Response[Any]:
        agent = await _agent_form(db_session, request, data)
        if agent is None:
            return Redirect(SIGN_IN, status_code=303)
        if data.get("confirm") != "yes":
            raise InvalidInput("tick the box to confirm the cancellation", field="confirm")
        contract = await use_cases.contract(db_session, contract_id)
        expected = accepted_refund(data, contract.currency)
        assert agent.key_id is not None
        if await cancel_from_page(db_session, services, contract_id, expected, agent.key_id):
            await _agent_did(db_session, agent, "contract", contract_id, "cancel", refund=expected.amount)
        return Redirect(f"/console/products/{contract.product_id}?notice=cancelled", status_code=303)

    @post("/contracts/{contract_id:str}/transfer", status_code=303)
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        contract_id: FromPath[str],
        data: FormData,
    ) -> Response[Any]:
        agent = await _agent_form(db_session, request, data)
        if agent is None:
            return Redirect(SIGN_IN, status_code=303)
        assert agent.key_id is not None
        new_owner = data.get("customer_id", "").strip()
        moved = await transfer_contract(db_session, contract_id, customer_id=new_owner, actor=agent.key_id)
        await _agent_did(db_session, agent, "contract", contract_id, "transfer", customer_id=new_owner)
        return Redirect(f"/console/products/{moved.product_id}?notice=transferred", status_code=303)
