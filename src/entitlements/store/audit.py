from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.store.base import utcnow
from entitlements.store.statements import Statements
from entitlements.store.tables import AuditEventRow
from entitlements.store.unit_of_work import unit_of_work

audit_events: Table = AuditEventRow.__table__  # type: ignore[assignment]
_APPEND = insert(audit_events)
_CHANGES = select(audit_events.c.action, audit_events.c.changes).where(
    audit_events.c.entity == bindparam("entity"), audit_events.c.entity_id == bindparam("entity_id")
)


async def changes_of(
    run: Statements, entity: str, entity_id: str, actions: Sequence[StrEnum]
) -> list[dict[str, Any]]:
    """What each of these actions on the entity recorded, oldest first, in the caller's unit."""
    wanted = {a.value for a in actions}
    rows = await run.rows(_CHANGES, entity=entity, entity_id=entity_id)
    return [msgspec.json.decode(changes) for action, changes in rows if action in wanted]


async def append(
    run: Statements,
    entity: str,
    entity_id: str,
    actor: str,
    entries: Sequence[tuple[StrEnum, dict[str, Any]]],
) -> None:
    """Entries (action, changes) for one entity, in the caller's unit of work: the one way an
    audit entry is written. An action is an `Action`, or a status the entity moved into."""
    at = utcnow()
    await run.run_many(
        _APPEND,
        [
            {
                "entity": entity,
                "entity_id": entity_id,
                "action": action,
                "actor": actor,
                "at": at,
                "changes": msgspec.json.encode(changes).decode(),
            }
            for action, changes in entries
        ],
    )


async def record(
    session: AsyncSession, entity: str, entity_id: str, action: StrEnum, actor: str, **changes: Any
) -> None:
    """One entry, in the session's unit of work."""
    await append(await unit_of_work(session), entity, entity_id, actor, [(action, changes)])


async def history(session: AsyncSession, entity_ids: list[str]) -> list[AuditEventRow]:
    rows = await session.scalars(
        select(AuditEventRow).where(AuditEventRow.entity_id.in_(entity_ids)).order_by(AuditEventRow.id)
    )
    return list(rows)
