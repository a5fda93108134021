"""Pages of rows oldest first, by (created_at, id), with a cursor that is the last row's id."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def oldest_first(
    session: AsyncSession, query: Select[T], table: Any, cursor: str | None, limit: int
) -> tuple[list[T], str | None]:
    """The page after the row `cursor` names (none: the first page; a cursor naming no row: an
    empty page), and the cursor of the next page (None: this is the last)."""
    if cursor is not None:
        after = select(table.created_at, table.id).where(table.id == cursor).subquery()
        query = query.where(tuple_(table.created_at, table.id) > select(after).scalar_subquery())
    rows = list(await session.scalars(query.order_by(table.created_at, table.id).limit(limit + 1)))
    return rows[:limit], rows[limit - 1].id if len(rows) > limit else None  # type: ignore[attr-defined]
