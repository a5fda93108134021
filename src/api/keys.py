"""API keys like Stripe's: publishable `pk_…` for checkout pages, secret `sk_…` with scopes.

Only a SHA-256 of each key is stored; the key itself is shown once, at creation. Keys carry
256 bits of randomness, so a fast hash is enough (no password stretching needed). Issuing,
listing and revoking them needs no web framework: the command line imports this module, and
`api.auth` checks a request's key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.tables import ApiKeyRow
from entitlements.errors import NotFound
from entitlements.identifiers import clean_text
from entitlements.store.base import utcnow


class KeyKind(StrEnum):
    PUBLISHABLE = "publishable"
    SECRET = "secret"


class Scope(StrEnum):
    CHECKOUT = "checkout"
    SUPPORT = "support"
    FINANCE = "finance"
    ADMIN = "admin"
    SERVICER = "servicer"  # a repair centre's key: bound to it, and the only scope the key has


# The scopes a key of one of the merchant's own systems may combine.
MERCHANT_SCOPES = [Scope.CHECKOUT, Scope.SUPPORT, Scope.FINANCE, Scope.ADMIN]


# What a handler may declare in `opt["access"]`: publishable keys, and/or secret-key scopes.
PUBLISHABLE = "publishable"


class IssuedKey(msgspec.Struct, frozen=True):
    id: str
    kind: KeyKind
    name: str
    scopes: list[Scope]
    key: str  # shown once


# What `issue_key` makes (a prefix, then 43 URL-safe characters), with room for keys made by hand.
KEY_NAME_LENGTH = 200
WELL_FORMED_KEY = re.compile(r"^(?:pk|sk)_(?:test|live)_[A-Za-z0-9_-]{16,128}$")


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def issue_key(
    session: AsyncSession,
    *,
    kind: KeyKind,
    name: str,
    scopes: list[Scope],
    live: bool,
    servicer_id: str | None = None,
) -> IssuedKey:
    name = clean_text(name, "name", KEY_NAME_LENGTH)  # shown in lists and the audit trail, as typed
    if kind is KeyKind.PUBLISHABLE and scopes:
        raise ValueError("publishable keys carry no scopes")
    if kind is KeyKind.SECRET and not scopes:
        raise ValueError("a secret key needs at least one scope")
    if (Scope.SERVICER in scopes) != (servicer_id is not None) or (
        servicer_id and scopes != [Scope.SERVICER]
    ):
        raise ValueError("a servicer key names its servicer and has the servicer scope alone")
    prefix = ("pk_" if kind is KeyKind.PUBLISHABLE else "sk_") + ("live_" if live else "test_")
    raw = prefix + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id="key_" + secrets.token_hex(12),
        kind=kind.value,
        name=name,
        scopes=" ".join(sorted(s.value for s in scopes)),
        secret_hash=hash_key(raw),
        hint=f"{prefix}…{raw[-4:]}",
        created_at=utcnow(),
        servicer_id=servicer_id,
    )
    session.add(row)
    await session.flush()
    return IssuedKey(row.id, kind, name, sorted(scopes), raw)


async def list_keys(session: AsyncSession) -> list[ApiKeyRow]:
    return list(await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)))


async def find_key_by_name(session: AsyncSession, name: str) -> ApiKeyRow | None:
    return await session.scalar(
        select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
    )


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKeyRow:
    row = await session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
