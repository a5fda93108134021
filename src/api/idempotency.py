"""`Idempotency-Key` on every POST: the same key and body within 24 hours replays the stored
response; the same key with another request is a problem. Keys belong to the API key that used
them. It runs after routing, so a 404 or 405 never consumes a key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy import bindparam, delete
from sqlalchemy.exc import IntegrityError

from api.auth import Principal, bearer_token_of
from api.edge import header
from api.errors import make_problem, send_problem
from api.tables import IdempotentRequestRow
from entitlements.store.base import utcnow
from entitlements.store.unit_of_work import Units

TTL = dt.timedelta(hours=24)
MAX_KEY = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(asgi_scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        path = scope["path"]

        async def problem(status: int, detail: str, slug: str) -> None:
            await send_problem(
                send,
                make_problem(status, detail, slug=slug, instance=path, request_id=state.get("request_id")),
            )

        if not key or len(key) > MAX_KEY or not key.isprintable():
            await problem(
                400, f"Idempotency-Key must be 1 to {MAX_KEY} printable characters", "invalid-idempotency-key"
            )
            return
        sessions = scope["app"].state.db.sessions
        token = bearer_token_of(header(scope, b"authorization"))
        principal: Principal | None = None
        if token is not None:
            principal = await scope["app"].state.key_cache.principal(token)
        state["principal"] = principal
        if principal is None:  # the guard answers 401; nothing to remember
            await self.app(asgi_scope, receive, send)
            return

        body = b""
        while True:  # the edge has read and bounded the body already; this replays it
            message: dict[str, Any] = await receive()  # type: ignore[assignment]
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        fingerprint = hashlib.sha256(
            b"\n".join([path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        now = utcnow()
        try:
            async with sessions() as session, session.begin():
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
                            principal=principal.key_id, key=key, fingerprint=fingerprint, created_at=now
                        )
                    )
        except IntegrityError:  # a twin request took the key a moment ago
            await problem(
                409, "a request with this Idempotency-Key is still in progress", "idempotency-in-progress"
            )
            return
        if stored is not None:
            if stored.fingerprint != fingerprint:
                await problem(
                    422, "this Idempotency-Key was used with a different request", "idempotency-key-reused"
                )
            elif stored.status_code is None:
                await problem(
                    409, "a request with this Idempotency-Key is still in progress", "idempotency-in-progress"
                )
            else:
                await _replay(send, stored)
            return
        await self._first_time(asgi_scope, body, send, principal.key_id, key)

    async def _first_time(self, asgi_scope: Scope, body: bytes, send: Send, principal: str, key: str) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]
        sessions = scope["app"].state.db.sessions
        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []

        async def replay_body() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Any) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = next(
                    (
                        v.decode("latin-1")
                        for k, v in message.get("headers", [])
                        if k.lower() == b"content-type"
                    ),
                    None,
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(asgi_scope, replay_body, capture)
        finally:
            async with sessions() as session, session.begin():
                row = await session.get(IdempotentRequestRow, (principal, key))
                if row is not None:
                    if status < 500:
                        row.status_code = status
                        row.content_type = content_type
                        row.body = b"".join(chunks)
                    else:  # a server error is not an answer: the caller may retry
                        await session.delete(row)


async def _replay(send: Any, stored: IdempotentRequestRow) -> None:
    body = stored.body or b""
    await send(
        {
            "type": "http.response.start",
            "status": stored.status_code or 200,
            "headers": [
                (b"content-type", (stored.content_type or "application/json").encode()),
                (b"content-length", str(len(body)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


_PURGE = delete(IdempotentRequestRow).where(IdempotentRequestRow.created_at < bindparam("before"))


async def purge_expired(units: Units, now: dt.datetime) -> None:
    """Forget the stored replies past their time to live (a scheduled job): a key is also
    forgotten when it is used again after that, but most keys never are."""
    async with units() as run:
        await run.run(_PURGE, before=now - TTL)
