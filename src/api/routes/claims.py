"""Claims: filed by a help desk, decided by the plan's rules or by a reviewer, voided; the review
queue (`GET /v1/claims?status=in_review`, oldest first)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor
from api.dependencies import Injected, Services
from api.keys import Scope
from api.routes.contracts import POST_PROBLEMS, READ_PROBLEMS, History, HistoryEntry
from api.routes.people import Id
from api.upload_links import upload_link
from api.views import IdempotencyKey
from billing.finance import claim_costs
from entitlements.claims import service
from entitlements.claims.rules import AWAITING_REVIEW, ClaimStatus, Fulfilment, ReviewAction
from entitlements.claims.schemas import ClaimInput, FulfilInput, ReviewInput
from entitlements.clock import utcnow
from entitlements.money import Money

# Who acts, by name: every review move names its agent, and the agent who filed a claim cannot
# approve it. The key says which system acts; the header says which person.
AgentHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Coverline-Agent",
        required=False,
        max_length=service.AGENT_LENGTH,
        description="The person acting (a help-desk agent, a reviewer), as the audit log names them",
    ),
]
ReviewerHeader = Annotated[
    str,
    HeaderParameter(
        name="Coverline-Agent",
        min_length=1,
        max_length=service.AGENT_LENGTH,
        description="The reviewer acting, as the audit log names them: required for every review move",
    ),
]
ClaimCursor = Annotated[str | None, Parameter(pattern=r"^clm_[0-9a-f]{20}$", required=False)]
StatusFilter = Annotated[ClaimStatus | None, Parameter(required=False)]
ContractFilter = Annotated[str | None, Parameter(max_length=64, required=False)]
PageSize = Annotated[int, Parameter(ge=1, le=service.PAGE, required=False)]


class ClaimView(msgspec.Struct, frozen=True):
    id: str
    reference: str
    contract_id: str
    product_id: str
    incident_kind: str
    incident_date: dt.date
    amount: Money
    deductible: Money
    covered_amount: Money  # in review: what the plan would pay if approved now
    status: ClaimStatus
    reason: str | None  # the rules' reason for a denial, or the reviewer's reason code
    review_reasons: list[str]  # why it went to review
    flags: list[str]  # fraud signals for the reviewer; never a denial by themselves
    filed_by: str | None
    decided_by: str | None
    created_at: dt.datetime
    review_since: dt.datetime | None
    seconds_in_review: int | None  # until now while it waits; until the decision after
    decided_at: dt.datetime | None
    voided_at: dt.datetime | None
    fulfilment: str | None  # repair, replace, reimburse, gift_card; replacement_due after a failed repair
    fulfilment_details: dict[str, Any] | None  # the service order, the SKU and cost, what is owed
    fulfilled_at: dt.datetime | None
    # An approved claim not yet made good: how it can be, in the order its plan's exchange policy
    # offers (a replacement sent ahead first, or a repair first); empty otherwise. Not in lists.
    fulfilment_offered: list[Fulfilment] = []
    # With a request for information: the link the customer uploads evidence through, no key needed.
    upload_url: str | None = None
    upload_expires_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Any, now: dt.datetime) -> ClaimView:
        waited = None
        if row.review_since is not None:
            until = now if row.status in AWAITING_REVIEW else (row.decided_at or row.voided_at or now)
            waited = max(int((until - row.review_since).total_seconds()), 0)
        return cls(
            id=row.id,
            reference=row.reference,
            contract_id=row.contract_id,
            product_id=row.product_id,
            incident_kind=row.incident_kind,
            incident_date=row.incident_date,
            amount=Money(row.amount, row.currency),
            deductible=Money(row.deductible, row.currency),
            covered_amount=Money(row.covered_amount, row.currency),
            status=ClaimStatus(row.status),
            reason=row.reason,
            review_reasons=msgspec.json.decode(row.review_reasons),
            flags=msgspec.json.decode(row.flags),
            filed_by=row.filed_by,
            decided_by=row.decided_by,
            created_at=row.created_at,
            review_since=row.review_since,
            seconds_in_review=waited,
            decided_at=row.decided_at,
            voided_at=row.voided_at,
            fulfilment=row.fulfilment,
            fulfilment_details=msgspec.json.decode(row.fulfilment_details)
            if row.fulfilment_details
            else None,
            fulfilled_at=row.fulfilled_at,
        )


async def _view(session: AsyncSession, claim: Any, now: dt.datetime) -> ClaimView:
    view = ClaimView.of(claim, now)
    return msgspec.structs.replace(view, fulfilment_offered=await service.fulfilment_offered(session, claim))


class ClaimPage(msgspec.Struct, frozen=True):
    data: list[ClaimView]
    next_cursor: str | None


class ClaimController(Controller):
    path = "/v1/claims"
    tags = ["claims"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.SUPPORT, Scope.ADMIN})}

    @post(
        summary="File a claim: approved or denied by the plan's rules, or sent to review; idempotent "
        "by reference",
        responses=POST_PROBLEMS,
    )
    async def file_claim(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[ClaimInput],
        agent: AgentHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ClaimView:
        now = utcnow()
        claim = await service.file_claim(
            db_session, data, actor=actor(request), agent=service.agent_name(agent), now=now
        )
        return await _view(db_session, claim, now)

    @get(
        summary="Claims, oldest filed first: with status=in_review, the review queue",
        responses=READ_PROBLEMS,
    )
    async def list_claims(
        self,
        db_session: NamedDependency[AsyncSession],
        status: StatusFilter = None,
        contract_id: ContractFilter = None,
        cursor: ClaimCursor = None,
        limit: PageSize = service.PAGE,
    ) -> ClaimPage:
        rows, next_cursor = await service.list_claims(
            db_session, status=status, contract_id=contract_id, cursor=cursor, limit=limit
        )
        now = utcnow()
        return ClaimPage([ClaimView.of(r, now) for r in rows], next_cursor)

    @get("/{claim_id:str}", summary="One claim", responses=READ_PROBLEMS)
    async def get_claim(self, db_session: NamedDependency[AsyncSession], claim_id: Id) -> ClaimView:
        return await _view(db_session, await service.get_claim(db_session, claim_id), utcnow())

    @get(
        "/{claim_id:str}/history", summary="Every move of the claim, with its agent", responses=READ_PROBLEMS
    )
    async def claim_history(self, db_session: NamedDependency[AsyncSession], claim_id: Id) -> History:
        rows = await service.claim_history(db_session, claim_id)
        return History([HistoryEntry.of(r) for r in rows])

    @post(
        "/{claim_id:str}/review",
        summary="A reviewer's move: approve, deny, request_info or resume, with a reason code",
        responses=POST_PROBLEMS,
        status_code=200,
    )
    async def review_claim(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        claim_id: Id,
        data: JSONBody[ReviewInput],
        agent: ReviewerHeader,
        idempotency_key: IdempotencyKey = None,
    ) -> ClaimView:
        now = utcnow()
        reviewer = service.agent_name(agent) or ""
        claim = await service.review_claim(
            db_session, claim_id, data, actor=actor(request), agent=reviewer, now=now
        )
        view = await _view(db_session, claim, now)
        if data.action is ReviewAction.REQUEST_INFO:
            link = upload_link(services.settings, claim.id, now)
            view = msgspec.structs.replace(view, upload_url=link.url, upload_expires_at=link.expires_at)
        return view

    @post(
        "/{claim_id:str}/fulfil",
        summary="Make an approved claim good: repair (a service order), replace, reimburse or gift card",
        responses=POST_PROBLEMS,
        status_code=200,
    )
    async def fulfil_claim(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        claim_id: Id,
        data: JSONBody[FulfilInput],
        agent: AgentHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ClaimView:
        now = utcnow()
        claim = await claim_costs.fulfil(
            db_session, claim_id, data, actor=actor(request), agent=service.agent_name(agent), now=now
        )
        return ClaimView.of(claim, now)

    @post(
        "/{claim_id:str}/void",
        summary="Void a claim, giving its limits back",
        responses=POST_PROBLEMS,
        status_code=200,
    )
    async def void_claim(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        claim_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> ClaimView:
        now = utcnow()
        return ClaimView.of(
            await service.void_claim(db_session, claim_id, actor=actor(request), now=now), now
        )
