"""An erasure's reach beyond the domain's tables: the person's page sessions, the answers kept
for `Idempotency-Key` replays that name them (opened with the seal, looked through, deleted), and
the letters written under `var/outbox/` to their address."""

from __future__ import annotations

from email import message_from_binary_file, policy

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from api.idempotency import ReplaySeal
from api.settings import Settings
from api.tables import IdempotentRequestRow, PageSessionRow
from entitlements.privacy import Erasure


async def erase_copies(session: AsyncSession, erasure: Erasure, seal: ReplaySeal) -> int:
    """Deletes the person's page sessions and the stored replays that name them; how many
    replays went."""
    await session.execute(delete(PageSessionRow).where(PageSessionRow.customer_id == erasure.customer_id))
    marks = [erasure.customer_id.encode()]
    if erasure.email:
        marks.append(erasure.email.encode())
    stored = (
        select(IdempotentRequestRow.principal, IdempotentRequestRow.key, IdempotentRequestRow.body)
        .where(IdempotentRequestRow.body.is_not(None))
        .execution_options(yield_per=200)  # a day of answers, a batch at a time, never all at once
    )
    naming = []
    async for principal, key, body in await session.stream(stored):
        plain = seal.open(body or b"", f"{principal}\n{key}".encode())
        if plain is not None and any(mark in plain for mark in marks):
            naming.append((principal, key))
    if naming:
        pair = tuple_(IdempotentRequestRow.principal, IdempotentRequestRow.key)
        await session.execute(delete(IdempotentRequestRow).where(pair.in_(naming)))
    return len(naming)


def erase_letters(settings: Settings, email: str | None) -> int:
    """Deletes the letters written to `email` under var/outbox (where letters go with no SMTP
    server); how many."""
    outbox = settings.var_dir / "outbox"
    if not email or not outbox.is_dir():
        return 0
    gone = 0
    for path in outbox.glob("*.eml"):
        with path.open("rb") as source:
            letter = message_from_binary_file(source, policy=policy.default)
        if str(letter.get("To", "")).strip().lower() == email.lower():
            path.unlink(missing_ok=True)
            gone += 1
    return gone
