"""Entitlement checks: is this product covered, for this incident, at this instant?"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, QueryParameter

from api.auth import KeyCache, access_guard, refusal, request_principal
from api.database import Database
from api.dependencies import Injected, Services
from api.edge import header
from api.errors import DATABASE_GONE, problem_responses
from api.keys import Scope
from api.views import (
    INSTANT_PATTERN,
    LOCALE_MAX,
    IdempotencyKey,
    Instant,
    LocaleQuery,
    instant_query,
    parse_instant,
    supported_instant,
)
from entitlements.catalog import DEFAULT_LOCALE, CoverageKind, Plan
from entitlements.checks.service import LOOKUP_LIMITS, Lookup, resolve
from entitlements.clock import utcnow
from entitlements.contracts.service import ContractDecision, ProductEntitlement, decide_product, plans_for
from entitlements.coverage import BenefitLeft, ContractStatus, Decision, PaidBy, Reason, no_contract
from entitlements.errors import DomainError
from entitlements.identifiers import normalize_imei, normalize_serial
from entitlements.localization import caller_choice
from entitlements.money import Money
from entitlements.summaries import Speech, speak, summarize
from entitlements.support.rules import SupportAnswer, support_answer
from entitlements.zones import UTC

MAX_BATCH = 1000
ACCESS = frozenset({Scope.SUPPORT, Scope.ADMIN})
CHECK_PARAMETERS = frozenset([*LOOKUP_LIMITS, "at", "incident", "locale", "opened_at"])
PlanMap = dict[tuple[str, int], Plan]


class CoveragePayer(msgspec.Struct, frozen=True):
    kind: CoverageKind
    paid_by: PaidBy  # manufacturer (its warranty), plan, or none: on the instant asked about


class WarrantyView(msgspec.Struct, frozen=True):
    """The manufacturer's warranty on the product, as registered."""

    parts_until: dt.datetime
    labour_until: dt.datetime


class ContractEntitlement(msgspec.Struct, frozen=True):
    contract_id: str
    plan_code: str
    plan_version: int
    plan_name: str
    status: ContractStatus
    covered: bool
    reason: Reason | None
    coverages: list[CoverageKind]
    deductible: Money | None
    claim_max: Money | None  # the most the incident's coverage pays for one claim
    remaining_claims: int | None
    remaining_aggregate: Money | None
    period_end: dt.datetime | None
    waiting_until: dt.datetime | None
    grace_until: dt.datetime | None
    # A payment of the contract is disputed at the bank: cover continues meanwhile; a lost
    # dispute ends it (`chargeback`).
    disputed: bool
    paid_by: list[CoveragePayer]  # per coverage of the plan, so a repair centre knows before it repairs
    # With `manufacturer_warranty`: when the coverage asked about begins.
    warranty_until: dt.datetime | None
    # The services the plan includes beyond repair, and how many could be redeemed at `at`.
    benefits: list[BenefitLeft]
    # The support the plan grants while in cover (None: none defined, or not in cover), with the
    # due-by instants of a case opened at `opened_at` when the check gives one.
    support: SupportAnswer | None


class ServiceOrderBrief(msgspec.Struct, frozen=True):
    id: str
    status: str
    servicer_id: str | None


class OpenClaimView(msgspec.Struct, frozen=True):
    """A claim of the product still in motion: in review, waiting for information, or approved
    and not yet fulfilled, with its repair's service order when there is one."""

    claim_id: str
    contract_id: str
    status: str
    incident_kind: CoverageKind
    incident_date: dt.date
    service_order: ServiceOrderBrief | None


def _open_claims(entitlement: ProductEntitlement) -> list[OpenClaimView]:
    return [
        OpenClaimView(
            c.claim_id,
            c.contract_id,
            c.status,
            c.incident_kind,
            c.incident_date,
            ServiceOrderBrief(c.service_order_id, c.service_order_status or "", c.servicer_id)
            if c.service_order_id
            else None,
        )
        for c in entitlement.product.open_claims
    ]


class ProductEntitlementView(msgspec.Struct, frozen=True):
    product_id: str
    serial: str | None
    imei: str | None
    sku: str
    category: str
    customer_id: str
    contact: str | None  # masked
    locale: str  # of `summary` and `speech`: the one asked for, else the customer's
    time_zone: str  # the customer's (IANA): the summary's dates are their days
    covered: bool
    reason: Reason | None
    summary: str
    contracts: list[ContractEntitlement]
    open_claims: list[OpenClaimView]  # so a help desk sees what is already under way
    manufacturer_warranty: WarrantyView | None


class EntitlementAnswer(msgspec.Struct, frozen=True):
    lookup: Lookup
    at: dt.datetime
    incident: CoverageKind | None
    locale: str
    time_zone: str  # of the dates in `summary`: the leading product's customer's, else UTC
    covered: bool
    reason: Reason | None
    summary: str
    speech: Speech  # the summary for a phone bot, the leading product's serial (or IMEI) said first
    products: list[ProductEntitlementView]


class BatchCheck(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lookups: Annotated[list[Lookup], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    at: Instant | None = None
    incident: CoverageKind | None = None
    locale: Annotated[str, msgspec.Meta(max_length=LOCALE_MAX)] | None = None
    opened_at: Instant | None = None  # a case opened then: each contract's support targets fall due


class BatchAnswer(msgspec.Struct, frozen=True):
    results: list[EntitlementAnswer]


def _aware(at: dt.datetime | None) -> dt.datetime:
    """The instant asked about, in UTC (an `Instant` always has its offset); default now."""
    return utcnow() if at is None else supported_instant(at, "at")


def _contract_view(
    plans: PlanMap, item: ContractDecision, locale: str, opened_at: dt.datetime | None
) -> tuple[ContractEntitlement, str]:
    c, d = item.contract, item.decision
    plan = plans[(c.plan_code, c.plan_version)]
    name = plan.text(locale).name
    support = plan.support if d.support_level is not None else None
    view = ContractEntitlement(
        c.contract_id,
        c.plan_code,
        c.plan_version,
        name,
        c.status,
        d.covered,
        d.reason,
        list(d.coverages),
        d.deductible,
        d.claim_max,
        d.remaining_claims,
        d.remaining_aggregate,
        d.period_end,
        d.waiting_until,
        d.grace_until,
        c.disputed,
        [CoveragePayer(kind, payer) for kind, payer in item.payers],
        d.warranty_until,
        list(d.benefits),
        support_answer(support, opened_at) if support else None,
    )
    return view, name


def _dates(item: ContractDecision | None, time_zone: str) -> dict[str, Any]:
    """What a summary says of the contract's own dates, in the customer's zone."""
    contract = item.contract if item else None
    return {
        "time_zone": time_zone,
        "starts_at": contract.coverage_starts_at if contract else None,
        "ended_at": (contract.ended_at or max((p.end for p in contract.periods), default=None))
        if contract
        else None,
    }


class _Lead(msgspec.Struct, frozen=True):
    """What the answer's speech needs of the product that answers for the lookup."""

    decision: Decision
    item: ContractDecision | None
    plan_name: str | None
    serial: str | None
    time_zone: str


def _product_view(
    plans: PlanMap, entitlement: ProductEntitlement, asked: str | None, opened_at: dt.datetime | None
) -> tuple[ProductEntitlementView, _Lead]:
    locale = asked or entitlement.product.locale or DEFAULT_LOCALE
    views: list[ContractEntitlement] = []
    best_item: ContractDecision | None = None
    best_name: str | None = None
    for item in entitlement.contracts:
        view, name = _contract_view(plans, item, locale, opened_at)
        views.append(view)
        if item.decision is entitlement.best:
            best_item, best_name = item, name
    product, best = entitlement.product, entitlement.best
    summary = summarize(best, locale, plan_name=best_name, **_dates(best_item, product.time_zone))
    product_view = ProductEntitlementView(
        product.product_id,
        product.serial,
        product.imei,
        product.sku,
        product.category,
        product.customer_id,
        product.contact,
        locale,
        product.time_zone,
        best.covered,
        best.reason,
        summary,
        views,
        _open_claims(entitlement),
        WarrantyView(product.warranty_parts_until, product.warranty_labour_until)
        if product.warranty_parts_until and product.warranty_labour_until
        else None,
    )
    return product_view, _Lead(best, best_item, best_name, product.serial or product.imei, product.time_zone)


def _speech(lead: _Lead, locale: str) -> Speech:
    dates = _dates(lead.item, lead.time_zone)
    return speak(lead.decision, locale, plan_name=lead.plan_name, serial=lead.serial, **dates)


async def answer_lookups(
    db: Database,
    lookups: list[Lookup],
    at: dt.datetime,
    incident: CoverageKind | None,
    asked: str | None,
    opened_at: dt.datetime | None = None,
    listed_as: str | None = None,
) -> list[EntitlementAnswer]:
    """Each lookup's answer, in the language `asked` for, else each product's customer's; the
    speech is the leading product's (the covered one, else the first). With `opened_at`, each
    contract's support targets fall due for a case opened then. `listed_as`: the list the
    lookups came in, which a problem about one of them names (`lookups[3].serial`)."""
    found = await resolve(db.snapshots(), lookups, listed_as)
    plans = await plans_for(db.plan, [snapshot for group in found for snapshot in group])
    answers = []
    for lookup, group in zip(lookups, found, strict=True):
        products = [
            _product_view(plans, decide_product(snapshot, plans, at, incident), asked, opened_at)
            for snapshot in group
        ]
        if products:
            lead, facts = next((p for p in products if p[0].covered), products[0])
            answers.append(
                EntitlementAnswer(
                    lookup,
                    at,
                    incident,
                    lead.locale,
                    lead.time_zone,
                    lead.covered,
                    lead.reason,
                    lead.summary,
                    _speech(facts, lead.locale),
                    [view for view, _ in products],
                )
            )
        else:
            nothing, locale = no_contract(at, incident), asked or DEFAULT_LOCALE
            said = _Lead(nothing, None, None, _said_identifier(lookup), UTC)
            summary = summarize(nothing, locale, plan_name=None)
            answers.append(
                EntitlementAnswer(
                    lookup,
                    at,
                    incident,
                    locale,
                    UTC,
                    False,
                    Reason.NO_CONTRACT,
                    summary,
                    _speech(said, locale),
                    [],
                )
            )
    return answers


def content_languages(answers: list[EntitlementAnswer]) -> str:
    """The languages of a batch's answers, in order of first use (`Content-Language: sv, fil`)."""
    return ", ".join(dict.fromkeys(answer.locale for answer in answers)) or DEFAULT_LOCALE


def _said_identifier(lookup: Lookup) -> str | None:
    """The serial or IMEI asked about, as stored (resolving it has already checked it)."""
    if lookup.serial:
        return normalize_serial(lookup.serial)
    return normalize_imei(lookup.imei) if lookup.imei else None


def _lookup_query(name: str) -> Any:
    return QueryParameter(max_length=LOOKUP_LIMITS[name], required=False)


class EntitlementController(Controller):
    path = "/v1/entitlements"
    tags = ["entitlements"]
    guards = [access_guard]
    opt = {"access": ACCESS}

    @get(
        summary="Is it covered? By serial, IMEI, contract, customer or order, at an instant, for an incident",
        responses=problem_responses(400, 401, 403, 422, 429),
    )
    async def check(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        serial: Annotated[str | None, _lookup_query("serial")] = None,
        imei: Annotated[str | None, _lookup_query("imei")] = None,
        contract_id: Annotated[str | None, _lookup_query("contract_id")] = None,
        customer_id: Annotated[str | None, _lookup_query("customer_id")] = None,
        order_ref: Annotated[str | None, _lookup_query("order_ref")] = None,
        at: Annotated[str | None, instant_query("at", "an instant with its offset; default now")] = None,
        incident: Annotated[CoverageKind | None, QueryParameter(required=False)] = None,
        locale: LocaleQuery = None,
        opened_at: Annotated[
            str | None, instant_query("opened_at", "a case opened then: the support targets' due-by instants")
        ] = None,
    ) -> Response[EntitlementAnswer]:
        lookup = Lookup(
            serial=serial, imei=imei, contract_id=contract_id, customer_id=customer_id, order_ref=order_ref
        )
        asked = caller_choice(locale, request.headers.get("accept-language"))
        [answer] = await answer_lookups(
            services.db,
            [lookup],
            parse_instant(at, "at") or utcnow(),
            incident,
            asked,
            parse_instant(opened_at, "opened_at"),
        )
        return Response(answer, headers={"content-language": answer.locale})

    @post(
        "/check",
        summary=f"Check up to {MAX_BATCH} lookups at once",
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 429),
        status_code=200,
    )
    async def check_batch(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        data: JSONBody[BatchCheck],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BatchAnswer]:
        asked = caller_choice(data.locale, request.headers.get("accept-language"))
        opened_at = supported_instant(data.opened_at, "opened_at") if data.opened_at else None
        answers = await answer_lookups(
            services.db, data.lookups, _aware(data.at), data.incident, asked, opened_at, "lookups"
        )
        return Response(BatchAnswer(answers), headers={"content-language": content_languages(answers)})


class DirectCheck:
    """`GET /v1/entitlements` answered in front of Litestar, for the hot path of every support
    channel. Routing, guards, dependency injection and response objects cost several times the
    check itself; this answers from the same functions (key cache, `answer_lookups`) with none
    of that. It answers only what the controller would answer 200 to, byte for byte (a test
    holds the two to it), and hands every other request, every error among them, to the
    controller, untouched.
    """

    # Queries in this alphabet decode as themselves: no percent-escapes or `+` to interpret.
    _PLAIN = re.compile(rb"^[A-Za-z0-9_.~:&=-]*$")
    _INSTANT = re.compile(INSTANT_PATTERN)
    _INCIDENTS = frozenset(kind.value for kind in CoverageKind)
    _encoder = msgspec.json.Encoder()

    def __init__(self, db: Database, keys: KeyCache) -> None:
        self.db = db
        self.keys = keys

    def _query(self, raw: bytes) -> dict[str, str] | None:
        if not self._PLAIN.match(raw):
            return None
        params: dict[str, str] = {}
        for pair in raw.decode().split("&"):
            name, equals, value = pair.partition("=")
            if not equals or not value or name in params:
                return None
            params[name] = value
        return params

    async def __call__(self, scope: dict[str, Any], send: Any) -> bool:
        """True when it answered; False leaves the request, unread, to the controller."""
        params = self._query(scope.get("query_string", b""))
        if params is None:
            return False
        if not params.keys() <= CHECK_PARAMETERS:
            return False
        given = [(name, value) for name, value in params.items() if name in LOOKUP_LIMITS]
        if len(given) != 1 or len(given[0][1]) > LOOKUP_LIMITS[given[0][0]]:
            return False
        at_text, incident_text, locale = params.get("at"), params.get("incident"), params.get("locale")
        opened_text = params.get("opened_at")
        for instant in (at_text, opened_text):
            if instant is not None and not self._INSTANT.match(instant):
                return False
        if incident_text is not None and incident_text not in self._INCIDENTS:
            return False
        if locale is not None and len(locale) > LOCALE_MAX:
            return False
        state = scope.setdefault("state", {})
        try:
            principal = await request_principal(self.keys, state, header(scope, b"authorization"))
            if refusal(principal, ACCESS) is not None:
                return False
            asked = caller_choice(locale, header(scope, b"accept-language"))
            at = parse_instant(at_text, "at") or utcnow()
            [answer] = await answer_lookups(
                self.db,
                [Lookup(**dict(given))],
                at,
                CoverageKind(incident_text) if incident_text else None,
                asked,
                parse_instant(opened_text, "opened_at"),
            )
        except DomainError:  # e.g. a malformed serial: the controller words the problem
            return False
        except DATABASE_GONE:  # the controller answers it, as a 503 problem with Retry-After
            return False
        body = self._encoder.encode(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-language", answer.locale.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return True
