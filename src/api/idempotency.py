"""`Idempotency-Key` on every POST: the same key and request within 24 hours replays the stored
answer; the same key with another request is a problem. Keys belong to the API key that used
them. It runs after routing, so a 404 or 405 never consumes a key.

- The answer is stored before it is sent, so a retry made the moment the first answer arrives
  replays it.
- A request still in flight answers 409 with `Retry-After`. A key whose request never finished
  (its server died mid-request) is taken over by a retry once its lease has passed (longer than
  a Stripe call with its retries), and the request runs again: every use case resumes from what
  it committed (checkout from its payment attempt), so nothing is charged twice.
- A POST that changes nothing (a batch check, a refund quote) is answered afresh; its key is not
  kept.
- Requests are compared by their decoded JSON, so whitespace and key order do not matter.
- Stored answers hold client secrets and personal data: they are sealed (AES-GCM under
  `COVERLINE_REPLAY_KEY`), capped in size (a larger answer is not kept, and its key is freed),
  and purged after 24 hours by a scheduled job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
from typing import Any

import msgspec
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy import bindparam, delete, update
from sqlalchemy.exc import IntegrityError

from api.auth import request_principal
from api.edge import header
from api.errors import make_problem, send_problem
from api.tables import IdempotentRequestRow
from entitlements.store.base import utcnow
from entitlements.store.unit_of_work import Units

TTL = dt.timedelta(hours=24)
MAX_KEY = 255
log = structlog.get_logger("api.idempotency")


class ReplaySeal:
    """AES-GCM over the stored answers, bound to the API key and Idempotency-Key they answer."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(secret.encode()).digest())

    def seal(self, plain: bytes, bound_to: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, bound_to)

    def open(self, sealed: bytes, bound_to: bytes) -> bytes | None:
        """The answer, or None when it was sealed under another key (the key was rotated)."""
        try:
            plain: bytes = self._aead.decrypt(sealed[:12], sealed[12:], bound_to)
        except (InvalidTag, ValueError):
            return None
        return plain


_BOUNDARY = re.compile(rb'boundary="?([^";]+)"?', re.IGNORECASE)


# POSTs that change nothing, answered afresh each time: a stored batch check (60 kB, sealed, kept
# a day) made each 2.5 times slower and grew the table by 8 MB a second under load.
_READS = re.compile(r"^/v1/(?:entitlements/check|contracts/[^/]+/refund-quote)$")


def fingerprint(path: str, query: bytes, body: bytes, content_type: bytes = b"") -> str:
    """What makes two requests the same: the path, the query and the body's JSON as decoded; a
    multipart body's parts without the boundary, which a client draws anew for each attempt; any
    other body as sent."""
    boundary = _BOUNDARY.search(content_type) if content_type.lower().startswith(b"multipart/") else None
    if boundary is not None:
        canonical = body.replace(b"--" + boundary.group(1), b"--")
    else:
        try:
            canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body else b""
        except msgspec.DecodeError:
            canonical = body
    return hashlib.sha256(b"\n".join([path.encode(), query, canonical])).hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST" or _READS.match(scope["path"].rstrip("/")):
            await self.app(asgi_scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        path = scope["path"]

        async def problem(status: int, detail: str, slug: str, retry_after: int | None = None) -> None:
            headers = [(b"retry-after", str(retry_after).encode())] if retry_after is not None else None
            await send_problem(
                send,
                make_problem(status, detail, slug=slug, instance=path, request_id=state.get("request_id")),
                headers,
            )

        if not key or len(key) > MAX_KEY or not key.isprintable():
            await problem(
                400, f"Idempotency-Key must be 1 to {MAX_KEY} printable characters", "invalid-idempotency-key"
            )
            return
        app_state = scope["app"].state
        principal = await request_principal(app_state.key_cache, state, header(scope, b"authorization"))
        if principal is None:  # the guard answers 401; nothing to remember
            await self.app(asgi_scope, receive, send)
            return

        body = b""
        while True:  # the edge has read and bounded the body already; this replays it
            message: dict[str, Any] = await receive()  # type: ignore[assignment]
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        content_type = (header(scope, b"content-type") or "").encode("latin-1")
        print_ = fingerprint(path, scope.get("query_string", b""), body, content_type)
        lease = dt.timedelta(seconds=app_state.settings.idempotency_lease_seconds)
        seal: ReplaySeal = app_state.replay_seal
        bound_to = f"{principal.key_id}\n{key}".encode()
        now = utcnow()
        try:
            async with app_state.db.sessions() as session, session.begin():
                await session.execute(
                    delete(IdempotentRequestRow).where(
                        IdempotentRequestRow.principal == principal.key_id,
                        IdempotentRequestRow.key == key,
                        IdempotentRequestRow.created_at < now - TTL,
                    )
                )
                stored = await session.get(IdempotentRequestRow, (principal.key_id, key))
                if stored is None:
                    session.add(
                        IdempotentRequestRow(
                            principal=principal.key_id, key=key, fingerprint=print_, created_at=now
                        )
                    )
        except IntegrityError:  # a twin request took the key a moment ago
            await problem(
                409,
                "a request with this Idempotency-Key is still in progress",
                "idempotency-in-progress",
                math.ceil(lease.total_seconds()),
            )
            return
        if stored is not None:
            if stored.fingerprint != print_:
                await problem(
                    422, "this Idempotency-Key was used with a different request", "idempotency-key-reused"
                )
                return
            answer = None if stored.status_code is None else seal.open(stored.body or b"", bound_to)
            if answer is not None:
                await _replay(send, stored, answer)
                return
            # In flight, or an answer sealed under a rotated key: run it again once the lease
            # has passed (the use cases resume from what they committed).
            if not await _take_over(app_state.db.sessions, stored, now, lease):
                wait = stored.created_at + lease - now
                await problem(
                    409,
                    "a request with this Idempotency-Key is still in progress",
                    "idempotency-in-progress",
                    max(1, math.ceil(wait.total_seconds())),
                )
                return
        await self._first_time(asgi_scope, body, send, principal.key_id, key, seal, bound_to)

    async def _first_time(
        self,
        asgi_scope: Scope,
        body: bytes,
        send: Send,
        principal: str,
        key: str,
        seal: ReplaySeal,
        bound_to: bytes,
    ) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]
        app_state = scope["app"].state
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def replay_body() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Any) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(asgi_scope, replay_body, capture)
        except BaseException:
            await _forget(app_state.db.sessions, principal, key)
            raise
        assert start is not None
        answer = b"".join(chunks)
        status = int(start["status"])
        headers = {k.lower(): v for k, v in start.get("headers", [])}
        if status >= 500 or len(answer) > app_state.settings.replay_max_bytes:
            # A server error is not an answer (the caller may retry); an answer too large to
            # keep frees its key instead of holding it unanswerable.
            await _forget(app_state.db.sessions, principal, key)
        else:
            async with app_state.db.sessions() as session, session.begin():
                row = await session.get(IdempotentRequestRow, (principal, key))
                if row is not None:
                    row.status_code = status
                    row.content_type = _text(headers.get(b"content-type"))
                    row.content_language = _text(headers.get(b"content-language"))
                    row.body = seal.seal(answer, bound_to)
        # Sent once stored: a retry made the moment this arrives finds it.
        await send(start)  # type: ignore[arg-type]
        await send({"type": "http.response.body", "body": answer, "more_body": False})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _take_over(
    sessions: Any, stored: IdempotentRequestRow, now: dt.datetime, lease: dt.timedelta
) -> bool:
    """Whether this request now holds the key: the one in flight before it has outlived its lease
    (or its answer can no longer be opened). Compare-and-set, so one retry of many wins."""
    if stored.status_code is None and stored.created_at > now - lease:
        return False
    async with sessions() as session, session.begin():
        taken = await session.execute(
            update(IdempotentRequestRow)
            .where(
                IdempotentRequestRow.principal == stored.principal,
                IdempotentRequestRow.key == stored.key,
                IdempotentRequestRow.created_at == stored.created_at,
            )
            .values(created_at=now, status_code=None, content_type=None, content_language=None, body=None)
        )
    if taken.rowcount == 1:
        log.warning("idempotency key taken over", key_id=stored.principal)
        return True
    return False


async def _forget(sessions: Any, principal: str, key: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            delete(IdempotentRequestRow).where(
                IdempotentRequestRow.principal == principal, IdempotentRequestRow.key == key
            )
        )


async def _replay(send: Any, stored: IdempotentRequestRow, body: bytes) -> None:
    headers = [
        (b"content-type", (stored.content_type or "application/json").encode()),
        (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    if stored.content_language:
        headers.append((b"content-language", stored.content_language.encode()))
    await send({"type": "http.response.start", "status": stored.status_code or 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


_PURGE = delete(IdempotentRequestRow).where(IdempotentRequestRow.created_at < bindparam("before"))


async def purge_expired(units: Units, now: dt.datetime) -> None:
    """Forget the stored answers past their time to live (a scheduled job): a key is also
    forgotten when it is used again after that, but most keys never are."""
    async with units() as run:
        await run.run(_PURGE, before=now - TTL)
