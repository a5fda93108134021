"""A claim's evidence: uploaded by support (`/v1/claims/{id}/evidence`), or by the customer through
a signed, expiring link (`/v1/evidence-uploads/{token}`, no key) that a reviewer's request for
information hands out; listed and downloaded only by those who may see the claim, always as an
attachment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access_guard, actor
from api.database import Database
from api.dependencies import Injected, Services
from api.errors import problem_responses
from api.keys import Scope
from api.routes.claims import AgentHeader
from api.routes.people import Id
from api.settings import Settings
from api.upload_links import UploadLink, claim_of_link, upload_link
from api.views import IdempotencyKey
from entitlements.claims import evidence
from entitlements.claims.evidence import EvidenceKind, EvidenceStore
from entitlements.claims.service import agent_name
from entitlements.clock import utcnow

UPLOAD_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


@dataclass
class EvidenceForm:
    file: UploadFile
    kind: EvidenceKind = EvidenceKind.PHOTO


Form = Annotated[EvidenceForm, Body(media_type=RequestEncodingType.MULTI_PART)]


class EvidenceView(msgspec.Struct, frozen=True):
    id: str
    claim_id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    filename: str | None
    uploaded_by: str
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> EvidenceView:
        return cls(
            row.id,
            row.claim_id,
            row.kind,
            row.content_type,
            row.size,
            row.sha256,
            row.filename,
            row.uploaded_by,
            row.created_at,
        )


class EvidenceList(msgspec.Struct, frozen=True):
    data: list[EvidenceView]


async def _attach(
    settings: Settings,
    db: Database,
    store: EvidenceStore,
    claim_id: str,
    data: EvidenceForm,
    uploaded_by: str,
    *,
    by_link: bool = False,
) -> EvidenceView:
    content = await data.file.read(settings.evidence_max_bytes + 1)
    row = await evidence.attach(
        db.sessions,
        store,
        claim_id,
        content,
        kind=data.kind,
        filename=data.file.filename,
        uploaded_by=uploaded_by,
        by_link=by_link,
        max_bytes=settings.evidence_max_bytes,
        max_files=settings.evidence_max_files,
        now=utcnow(),
    )
    return EvidenceView.of(row)


class EvidenceController(Controller):
    path = "/v1/claims/{claim_id:str}"
    tags = ["claims"]
    guards = [access_guard]
    opt = {"access": frozenset({Scope.SUPPORT, Scope.ADMIN})}

    @post(
        "/evidence",
        summary="Attach a photo, receipt or report (multipart `file`; JPEG, PNG, HEIC or PDF by its bytes)",
        responses=UPLOAD_PROBLEMS,
        opt={"read_only": True},  # no transaction open while the file is written
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        claim_id: Id,
        data: Form,
        agent: AgentHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> EvidenceView:
        uploaded_by = agent_name(agent) or actor(request)
        return await _attach(
            services.settings, services.db, services.evidence_store, claim_id, data, uploaded_by
        )

    @get("/evidence", summary="The claim's evidence", responses=problem_responses(404))
    async def list_evidence(self, db_session: NamedDependency[AsyncSession], claim_id: Id) -> EvidenceList:
        return EvidenceList([EvidenceView.of(r) for r in await evidence.evidence_of(db_session, claim_id)])

    @get(
        "/evidence/{evidence_id:str}",
        summary="One file, as an attachment",
        responses=problem_responses(404),
        media_type="application/octet-stream",
    )
    async def download(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        claim_id: Id,
        evidence_id: Id,
    ) -> Response[bytes]:
        row = await evidence.one_evidence(db_session, claim_id, evidence_id)
        content = await services.evidence_store.get(row.storage_key)
        name = f"{row.id}.{evidence.ALLOWED[row.content_type]}"
        return Response(
            content,
            media_type=row.content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Content-Security-Policy": "default-src 'none'; sandbox",  # nosniff is on every answer
            },
        )

    @post(
        "/upload-links",
        summary="A signed link the customer uploads evidence through, without a key, until it expires",
        responses=problem_responses(404),
    )
    async def create_link(
        self,
        services: Injected[Services],
        db_session: NamedDependency[AsyncSession],
        claim_id: Id,
        idempotency_key: IdempotencyKey = None,
    ) -> UploadLink:
        await evidence.evidence_of(db_session, claim_id)  # the claim exists
        return upload_link(services.settings, claim_id, utcnow())


class UploadController(Controller):
    path = "/v1/evidence-uploads"
    tags = ["claims"]

    @post(
        "/{token:str}",
        summary="The customer's upload, through the link a reviewer sent (no key; the link is the right)",
        responses=UPLOAD_PROBLEMS,
        opt={"read_only": True},
    )
    async def upload(
        self,
        services: Injected[Services],
        token: Annotated[str, msgspec.Meta(max_length=200)],
        data: Form,
    ) -> EvidenceView:
        claim_id = claim_of_link(services.settings, token, utcnow())
        return await _attach(
            services.settings,
            services.db,
            services.evidence_store,
            claim_id,
            data,
            evidence.CUSTOMER,
            by_link=True,
        )
