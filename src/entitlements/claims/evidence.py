"""A claim's evidence: photos, receipts and police reports.

A file is known by its bytes (sniffed with `filetype`, a pure-Python reader of magic numbers),
never by its name or the type it was sent as: JPEG, PNG, HEIC and PDF are taken, nothing else (no
SVG, no HTML, nothing a browser would run). The bytes go to the evidence store (`EvidenceStore`:
a folder, or an S3-compatible bucket) before the unit of work that records them, never inside it;
a file whose unit of work then failed is an orphan, which `sweep_orphans` deletes later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from typing import Protocol

import filetype
import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action
from entitlements.claims.rules import ClaimStatus
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.fields import new_id
from entitlements.identifiers import clean_text
from entitlements.store import audit
from entitlements.store.contracts import live_customer
from entitlements.store.tables import ClaimRow, ContractRow, EvidenceRow
from entitlements.store.unit_of_work import commit, unit_of_work

# What the bytes may be, and the extension a download is named with.
ALLOWED = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic", "application/pdf": "pdf"}
ORPHAN_AGE = dt.timedelta(hours=1)  # a file this old with no row is an orphan
CUSTOMER = "customer"  # who uploads through the customer's link, as the history says


class EvidenceKind(StrEnum):
    PHOTO = "photo"
    RECEIPT = "receipt"
    POLICE_REPORT = "police_report"
    OTHER = "other"


class StoredFile(msgspec.Struct, frozen=True):
    key: str
    modified_at: dt.datetime


class EvidenceStore(Protocol):
    """Where evidence files live; each call may be a network call, so none is made inside a
    database transaction."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def files(self) -> AsyncIterator[StoredFile]: ...


class UnsupportedFile(InvalidInput):
    """The bytes are none of the types evidence may be."""


def sniff(data: bytes) -> str:
    """The file's type as its bytes say, or `UnsupportedFile`."""
    kind = filetype.guess(data[:8192])
    mime: str | None = str(kind.mime) if kind is not None else None
    if mime is None or mime not in ALLOWED:
        raise UnsupportedFile(
            "evidence is a JPEG, PNG, HEIC or PDF file" + (f", not {mime}" if mime else ""), field="file"
        )
    return mime


Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


# What a customer's upload link takes evidence for: a claim still being decided.
_UNDECIDED = frozenset({ClaimStatus.IN_REVIEW.value, ClaimStatus.INFO_REQUESTED.value})


async def _claim_taking_evidence(
    session: AsyncSession, claim_id: str, *, by_link: bool, max_files: int, lock: bool = False
) -> ClaimRow:
    """The claim, if it takes one more file: not voided; not its customer's erased (nothing more
    is recorded about them); through the customer's link, only while it is being decided; and
    fewer than `max_files` files so far (read under the claim's lock when writing)."""
    claim = await session.get(ClaimRow, claim_id, with_for_update=lock or None)
    if claim is None:
        raise NotFound(f"no claim {claim_id}", field="claim_id")
    if claim.status == ClaimStatus.VOIDED:
        raise Conflict("a voided claim takes no evidence", field="claim_id")
    if by_link and claim.status not in _UNDECIDED:
        raise Conflict(f"the claim is {claim.status}: its upload link takes no more files", field="claim_id")
    contract = await session.get(ContractRow, claim.contract_id)
    assert contract is not None
    await live_customer(session, contract.customer_id)
    held = await session.scalar(
        select(func.count()).select_from(EvidenceRow).where(EvidenceRow.claim_id == claim.id)
    )
    if (held or 0) >= max_files:
        raise Conflict(f"a claim holds at most {max_files} files", field="claim_id")
    return claim


async def attach(
    sessions: Sessions,
    store: EvidenceStore,
    claim_id: str,
    data: bytes,
    *,
    kind: EvidenceKind,
    filename: str | None,
    uploaded_by: str,
    by_link: bool,
    max_bytes: int,
    max_files: int,
    now: dt.datetime,
) -> EvidenceRow:
    """Check the claim and the bytes, write the file, then record it in a unit of work of its own.
    `by_link`: sent through the customer's upload link, not by an agent."""
    if not data:
        raise InvalidInput("the file is empty", field="file")
    if len(data) > max_bytes:
        raise InvalidInput(f"a file is at most {max_bytes} bytes", field="file")
    content_type = sniff(data)
    async with sessions() as session:  # a read, committed at once: no transaction stays open
        await _claim_taking_evidence(session, claim_id, by_link=by_link, max_files=max_files)
    digest = hashlib.sha256(data).hexdigest()
    evidence_id = new_id("evd")
    key = f"claims/{claim_id}/{evidence_id}.{ALLOWED[content_type]}"
    await store.put(key, data, content_type)
    async with sessions() as session:  # checked again under the claim's lock (a file written in
        # between that is not recorded is an orphan, which `sweep_orphans` deletes)
        claim = await _claim_taking_evidence(
            session, claim_id, by_link=by_link, max_files=max_files, lock=True
        )
        row = EvidenceRow(
            id=evidence_id,
            claim_id=claim.id,
            kind=kind.value,
            content_type=content_type,
            size=len(data),
            sha256=digest,
            storage_key=key,
            filename=_filename(filename),
            uploaded_by=uploaded_by,
            created_at=now,
        )
        session.add(row)
        unit = await unit_of_work(session)
        await audit.append(
            unit,
            "claim",
            claim.id,
            uploaded_by,
            [(Action.EVIDENCE, {"evidence_id": row.id, "kind": row.kind})],
        )
        unit.emit(
            "claim.evidence_added",
            {"claim_id": claim.id, "evidence_id": row.id, "kind": row.kind, "content_type": content_type},
            product_id=claim.product_id,
            contract_id=claim.contract_id,
        )
        await commit(session)
    return row


async def evidence_of(session: AsyncSession, claim_id: str) -> list[EvidenceRow]:
    if await session.get(ClaimRow, claim_id) is None:
        raise NotFound(f"no claim {claim_id}", field="claim_id")
    query = select(EvidenceRow).where(EvidenceRow.claim_id == claim_id)
    return list(await session.scalars(query.order_by(EvidenceRow.created_at, EvidenceRow.id)))


async def one_evidence(session: AsyncSession, claim_id: str, evidence_id: str) -> EvidenceRow:
    row = await session.get(EvidenceRow, evidence_id)
    if row is None or row.claim_id != claim_id:
        raise NotFound(f"no evidence {evidence_id} on claim {claim_id}", field="evidence_id")
    return row


async def sweep_orphans(sessions: Sessions, store: EvidenceStore, now: dt.datetime) -> int:
    """Delete the stored files no evidence row names, once they are older than an upload takes:
    what a failed unit of work left behind. The count deleted."""
    deleted = 0
    async for stored in store.files():
        if now - stored.modified_at < ORPHAN_AGE:
            continue
        async with sessions() as session:
            named = await session.scalar(select(EvidenceRow.id).where(EvidenceRow.storage_key == stored.key))
        if named is None:
            await store.delete(stored.key)
            deleted += 1
    return deleted


def _filename(raw: str | None) -> str | None:
    """The name the file came with, as text a person typed; None where there is none, or where it
    does not read as one (a tag character, a NUL): the file is kept all the same, where the upload
    failed after the file was stored."""
    try:
        return clean_text(raw.strip()[:200], "filename", 400)[:200] if raw and raw.strip() else None
    except InvalidInput:
        return None
