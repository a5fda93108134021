"""The catalog's training resources, as loaded: replaced whole by each load of the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.catalog import DEFAULT_LOCALE, Resource, ResourceText
from entitlements.store.tables import TrainingResourceRow


async def replace_resources(session: AsyncSession, resources: Sequence[Resource]) -> int:
    """The catalog's resources, in place of those loaded before; how many there are."""
    await session.execute(delete(TrainingResourceRow))
    rows = [
        {"category": r.category.value, "position": i, "locale": locale, "title": t.title, "url": t.url}
        for i, r in enumerate(resources)
        for locale, t in r.texts.items()
    ]
    if rows:
        await session.execute(insert(TrainingResourceRow), rows)
    return len(resources)


async def resources_for(session: AsyncSession, category: str, locale: str) -> list[ResourceText]:
    """A category's resources in `locale`, each in English where it has no text in it."""
    found = await session.execute(
        select(
            TrainingResourceRow.position,
            TrainingResourceRow.locale,
            TrainingResourceRow.title,
            TrainingResourceRow.url,
        )
        .where(
            TrainingResourceRow.category == category, TrainingResourceRow.locale.in_([locale, DEFAULT_LOCALE])
        )
        .order_by(TrainingResourceRow.position)
    )
    by_position: dict[int, ResourceText] = {}
    for position, text_locale, title, url in found:
        if position not in by_position or text_locale == locale:
            by_position[position] = ResourceText(title, url)
    return [by_position[p] for p in sorted(by_position)]
