"""Tables the HTTP edge owns: API keys, stored idempotent responses, page sessions and rate limits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from entitlements.store.base import Base, UTCDateTime
from entitlements.store.tables import ServicerRow


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # publishable | secret
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # prefix and last four, to recognise a key
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A `servicer` key acts for this repair centre only.
    servicer_id: Mapped[str | None] = mapped_column(ForeignKey(ServicerRow.id), nullable=True)


class IdempotentRequestRow(Base):
    __tablename__ = "idempotent_requests"

    principal: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: in flight
    content_type: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_language: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # sealed (AES-GCM)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class PageSessionRow(Base):
    """A browser signed in to a page: an agent in the console (by a support key and their own
    name) or a customer in the portal (by a portal link). The cookie holds a random value; this
    row holds its hash."""

    __tablename__ = "page_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # console | portal
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(80), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    locale: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class RateBucketRow(Base):
    """A rate limit's bucket, shared by every worker: tokens left at `at`, refilled at the
    limit's rate up to its capacity. Workers lease tokens from it in batches. UNLOGGED: a crash
    forgets it (every bucket starts full again), and no write of it waits on the WAL's fsync."""

    __tablename__ = "rate_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}  # noqa: RUF012  (SQLAlchemy reads it once)

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)  # a key's id (and an address)
    tokens: Mapped[float] = mapped_column(Float)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
