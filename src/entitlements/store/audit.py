from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.store.base import utcnow
from entitlements.store.tables import AuditEventRow


def record(
    session: AsyncSession, entity: str, entity_id: str, action: str, actor: str, **changes: Any
) -> None:
    session.add(
        AuditEventRow(
            entity=entity,
            entity_id=entity_id,
            action=action,
            actor=actor,
            at=utcnow(),
            changes=msgspec.json.encode(changes).decode(),
        )
    )


async def history(session: AsyncSession, entity_ids: list[str]) -> list[AuditEventRow]:
    rows = await session.scalars(
        select(AuditEventRow).where(AuditEventRow.entity_id.in_(entity_ids)).order_by(AuditEventRow.id)
    )
    return list(rows)
