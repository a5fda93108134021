"""Tables of the domain. The schema itself is built by the Alembic history in `migrations/`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from entitlements.store.base import Base, UTCDateTime


class PlanRow(Base):
    """One published plan version; its definition is immutable once written."""

    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean)
    digest: Mapped[str] = mapped_column(String(64))
    definition: Mapped[str] = mapped_column(Text)  # the Plan as canonical JSON
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
