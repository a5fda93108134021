"""Billing's tables: Stripe events as received, and the ledger of money movements."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from entitlements.store.base import Base, UTCDateTime


class StripeEventRow(Base):
    """Every event exactly once, by Stripe's id, raw as it came."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    created: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(200))


class LedgerEntryRow(Base):
    """An append-only money movement. Corrections are new rows; amounts are signed minor units
    (money in positive, money out negative)."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    entry_key: Mapped[str] = mapped_column(String(255), unique=True)  # one row per Stripe movement
    kind: Mapped[str] = mapped_column(String(32), index=True)  # sale | renewal | refund | dispute | …
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contracts.id"), index=True, nullable=True)
    stripe_payment_intent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_charge: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_invoice: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_refund: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_dispute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_balance_transaction: Mapped[str | None] = mapped_column(String(255), nullable=True)
    period_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    period_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claim_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)  # a claim cost's
    servicer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the repair's
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PaymentAttemptRow(Base):
    """One try to pay a contract's first payment: its Stripe object (PaymentIntent, subscription
    or Checkout Session) and outcome, with a decline code and never card data. Its number is in
    the Stripe idempotency key, so a retry with another card is a new request to Stripe."""

    __tablename__ = "payment_attempts"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer(), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    payment_method: Mapped[str | None] = mapped_column(String(128), nullable=True)
    stripe_object: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decline_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class GatewayLeaseRow(Base):
    """A call to Stripe under way that must not be made twice at once (`billing.leases`)."""

    __tablename__ = "gateway_leases"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # checkout:<contract>, cancel:<contract>
    holder: Mapped[str] = mapped_column(String(32))
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    planned: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)  # what the holder asks
