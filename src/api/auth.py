"""Who is calling: a request's key, checked against its stored hash (remembered a few seconds per
worker), and the guards that hold each operation to the key kinds and scopes it allows."""

from __future__ import annotations

import functools
import time
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from api.database import Database
from api.keys import PUBLISHABLE, WELL_FORMED_KEY, KeyKind, Scope, hash_key
from entitlements.coalescing import SingleFlight


class Principal(msgspec.Struct, frozen=True):
    key_id: str
    kind: KeyKind
    scopes: frozenset[Scope]
    servicer_id: str | None = None  # a `servicer` key's repair centre


class KeyCache:
    """Key lookups, remembered for a few seconds per worker: checks run at thousands per second
    per key, and a lookup per request would cost more than the check itself. When a key's entry
    runs out, the requests that miss it together share one lookup rather than each queueing for
    a connection of their own."""

    MAX_ENTRIES = 10_000

    def __init__(self, db: Database, seconds: float) -> None:
        self.db = db
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lookups: SingleFlight[str, Principal | None] = SingleFlight()

    async def principal(self, raw: str) -> Principal | None:
        # Only what could be a key of ours is looked up, and it is remembered by its hash: a
        # stranger's 60 kB tokens cost neither a query nor memory (3,000 of them grew a worker by
        # 170 MB when they were remembered as sent).
        if not WELL_FORMED_KEY.match(raw):
            return None
        secret_hash = hash_key(raw)
        if self.seconds <= 0:
            return await authenticate(self.db, secret_hash)
        entry = self._entries.get(secret_hash)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return await self._lookups.run(secret_hash, functools.partial(self._look_up, secret_hash))

    async def _look_up(self, secret_hash: str) -> Principal | None:
        started = time.monotonic()  # a revoked key stops working within `seconds` of this
        principal = await authenticate(self.db, secret_hash)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[secret_hash] = (started + self.seconds, principal)
        return principal


async def authenticate(db: Database, secret_hash: str) -> Principal | None:
    """The active key with this hash, or None (unknown or revoked)."""
    found = await db.active_key(secret_hash)
    if found is None:
        return None
    key_id, kind, scopes, servicer_id = found
    return Principal(
        key_id=key_id,
        kind=KeyKind(kind),
        scopes=frozenset(Scope(s) for s in scopes.split()),
        servicer_id=servicer_id,
    )


def bearer_token_of(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def request_principal(keys: KeyCache, state: Any, authorization: str | None) -> Principal | None:
    """The caller's key, looked up once per request and kept on its state (`state`: the ASGI
    scope's, or the connection's view of it): the edge's rate limit and body bound, the direct
    check, the idempotency layer and the guards all ask for it."""
    if "principal" not in state:
        token = bearer_token_of(authorization)
        state["principal"] = await keys.principal(token) if token is not None else None
    found: Principal | None = state["principal"]
    return found


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller's key, looked up once per request and kept on the connection's state."""
    return await request_principal(
        connection.app.state.key_cache, connection.state, connection.headers.get("authorization")
    )


def refusal(principal: Principal | None, allowed: frozenset[str]) -> HTTPException | None:
    """Why this caller may not use an operation open to `allowed`, or None when it may."""
    if principal is None:
        return NotAuthorizedException("a valid API key is required: Authorization: Bearer <key>")
    if principal.kind is KeyKind.PUBLISHABLE:
        if PUBLISHABLE not in allowed:
            return PermissionDeniedException("publishable keys may only read plans and request offers")
        return None
    if not (principal.scopes & allowed):
        needed = ", ".join(sorted(a for a in allowed if a != PUBLISHABLE))
        return PermissionDeniedException(f"this key lacks the scope this operation needs ({needed})")
    return None


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Lets the caller through if its key may use the handler (`opt["access"]`)."""
    refused = refusal(await principal_of(connection), handler.opt.get("access", frozenset()))
    if refused is not None:
        raise refused


def servicer_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The repair centre a `servicer` key acts for; None for the merchant's own keys."""
    principal: Principal | None = connection.state.get("principal")
    return principal.servicer_id if principal is not None else None


def actor(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The key id that the audit log records for this request (set by `access_guard`)."""
    principal: Principal | None = connection.state.get("principal")
    if principal is None:
        raise NotAuthorizedException("a valid API key is required")
    return principal.key_id
