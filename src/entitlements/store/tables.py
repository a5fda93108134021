"""Tables of the domain. The schema itself is built by the Alembic history in `migrations/`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, synonym

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
    # The rule clauses as rendered when published (`entitlements.terms.RenderedTerms`, JSON).
    rendered_terms: Mapped[str] = mapped_column(Text, server_default="{}")
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CustomerRow(Base):
    """The customer information file."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True, nullable=True)
    locale: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    # IANA; NULL for customers recorded before zones whose country keeps several clocks (UTC).
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Marketing letters (a lead's offer) only with consent; service letters always.
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Set once the person was erased: name, email, phone and external ref tombstoned.
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ProductRow(Base):
    """A covered item: one physical product, known by serial and/or IMEI."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    serial: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    imei: Mapped[str | None] = mapped_column(String(15), unique=True, nullable=True)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    purchase_date: Mapped[dt.date] = mapped_column(Date)
    warranty_months: Mapped[int] = mapped_column(Integer)  # the manufacturer's, on parts
    # On labour, when it differs from parts (None: the same months).
    warranty_labour_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    order_ref: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    # The entitlement snapshot (see `store.snapshots`): rewritten with every change to the record.
    entitlement: Mapped[str] = mapped_column(Text, deferred=True)
    # The sequence number of the product's latest event (taken under the row's lock).
    event_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ContractRow(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        # The unpaid contracts whose offer expired, found each minute by `checkout.abandon`.
        Index(
            "ix_contracts_unpaid_offer_expiry",
            "offer_expires_at",
            postgresql_where=text("status = 'pending_payment'"),
        ),
        # The contracts sold a few days ago, found by each outreach sweep ("getting started") a
        # batch at a time in (sold_at, id) order: each batch walks this index from the last one's
        # key, where an index of sold_at alone sorted every contract of the window per batch.
        Index("ix_contracts_sold_at_id", "sold_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    offer_id: Mapped[str] = mapped_column(String(64), unique=True)  # an offer sells once
    plan_code: Mapped[str] = mapped_column(String(64))
    plan_version: Mapped[int] = mapped_column(Integer)
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    billing: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), index=True)
    sold_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    coverage_starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    waiting_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Unpaid by then, the contract is abandoned (its Stripe objects cancelled by a job).
    offer_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    grace_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A payment of the contract is disputed at the bank: cover continues, checks say so.
    disputed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    # Bumped by every change to the contract, its periods or its claims: the first statement
    # of each write, so its row lock also serialises writers on the contract.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CoveragePeriodRow(Base):
    __tablename__ = "coverage_periods"

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)  # outreach's sweep
    source_ref: Mapped[str] = mapped_column(String(128), unique=True)  # the payment that bought it


class ContractEventRow(Base):
    """Lifecycle events applied to a contract, once each, by their reference."""

    __tablename__ = "contract_events"

    # A fact is its reference and its kind: an invoice's failed payment and its payment are two.
    reference: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ClaimRow(Base):
    __tablename__ = "claims"
    __table_args__ = (
        Index("ix_claims_status_queue", "status", "review_since", "id"),
        Index("ix_claims_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), unique=True)  # the caller's, for idempotency
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    incident_kind: Mapped[str] = mapped_column(String(32))
    incident_date: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    covered_amount: Mapped[int] = mapped_column(BigInteger)
    deductible: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # `claims.rules.ClaimStatus`
    # The rules' reason for a denial, or the reviewer's reason code for their decision.
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    filed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the agent, when named
    review_reasons: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON
    flags: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON: fraud flags
    review_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the reviewing agent
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # How an approved claim is fulfilled (`claims.rules.Fulfilment`), what with, and when done.
    fulfilment: Mapped[str | None] = mapped_column(String(24), nullable=True)
    fulfilment_details: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    fulfilled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BenefitRedemptionRow(Base):
    """One use of a service the contract's plan includes (`catalog.Benefit`): it counts against
    the benefit until voided."""

    __tablename__ = "benefit_redemptions"
    __table_args__ = (Index("ix_benefit_redemptions_contract", "contract_id", "redeemed_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), unique=True)  # the caller's, for idempotency
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(32))  # `catalog.BenefitKind`
    status: Mapped[str] = mapped_column(String(16))  # `benefits.rules.RedemptionStatus`
    fee: Mapped[int] = mapped_column(BigInteger)  # what the customer pays for it, in `currency`
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)  # `catalog.SupportChannel`
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    redeemed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at = synonym("redeemed_at")  # the order pages are kept in (`store.pages`)
    redeemed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the agent, when named
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class EvidenceRow(Base):
    """A file attached to a claim: the bytes live in the evidence store under `storage_key`."""

    __tablename__ = "claim_evidence"
    __table_args__ = (Index("ix_claim_evidence_claim_id", "claim_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"))
    kind: Mapped[str] = mapped_column(String(24))  # photo | receipt | police_report | other
    content_type: Mapped[str] = mapped_column(String(64))  # as the bytes say, never the name
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)  # as sent, cleaned
    uploaded_by: Mapped[str] = mapped_column(String(64))  # the agent, or `customer`
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ServicerRow(Base):
    """A repair centre: the categories and countries it serves; its keys are bound to it."""

    __tablename__ = "servicers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    categories: Mapped[str] = mapped_column(Text)  # JSON list
    countries: Mapped[str] = mapped_column(Text)  # JSON list; empty: every country
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ServiceOrderRow(Base):
    """A repair of an approved claim's product, or a visit an included service needs (an
    installation, a maintenance visit), offered to servicers or assigned to one."""

    __tablename__ = "service_orders"
    __table_args__ = (
        Index("ix_service_orders_servicer", "servicer_id", "created_at"),
        Index("ix_service_orders_status", "status", "category", "country"),
        CheckConstraint("(claim_id IS NULL) <> (redemption_id IS NULL)", name="one_purpose"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # What the order does: an approved claim's repair, or a visit an included service needs.
    claim_id: Mapped[str | None] = mapped_column(ForeignKey("claims.id"), unique=True, nullable=True)
    redemption_id: Mapped[str | None] = mapped_column(
        ForeignKey("benefit_redemptions.id"), unique=True, nullable=True
    )
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    servicer_id: Mapped[str | None] = mapped_column(ForeignKey("servicers.id"), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    # The job, as the repair centre needs it: the product and what happened to it.
    sku: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str | None] = mapped_column(String(40), nullable=True)
    incident_kind: Mapped[str] = mapped_column(String(32))
    incident_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # the claim's description
    status: Mapped[str] = mapped_column(String(20))  # `repairs.rules.OrderStatus`
    currency: Mapped[str] = mapped_column(String(3))
    payable: Mapped[int] = mapped_column(BigInteger)  # what the claim pays: an estimate above waits
    estimate: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: parts, labour
    estimate_approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cost: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: parts, labour, shipping
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuditEventRow(Base):
    """Who changed what, when: every state change of a contract, claim or product."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(16))  # contract | claim | product | customer
    entity_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    changes: Mapped[str] = mapped_column(Text)  # JSON


class EventRow(Base):
    """An event, written in the unit of work of the change it reports (the outbox)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_created_at", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    contract_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    sequence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # per product, increasing
    data: Mapped[str] = mapped_column(Text)  # JSON, locale-neutral
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WebhookEndpointRow(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))  # empty: every event
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)  # of the texts in payloads
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret: Mapped[str] = mapped_column(Text)  # whsec_…, Standard Webhooks
    previous_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # also signs until…
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WebhookDeliveryRow(Base):
    """One attempt to deliver one event to one endpoint."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_event", "event_id", "endpoint_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # delivered | failed | gone
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OutreachRow(Base):
    """A scheduled notice sent (or considered) once: a renewal's reminder, a fixed term's end, a
    lead for a product bought without a plan. The key makes a second sweep, on any worker, a
    no-op."""

    __tablename__ = "outreach"
    __table_args__ = (UniqueConstraint("kind", "subject_id", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # the event type
    subject_id: Mapped[str] = mapped_column(String(40))  # the contract, or the product for a lead
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the renewal, the end, the lead's expiry
    event_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # None: nothing to say
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LeadRow(Base):
    """A lead: an offer of a plan for a product bought without one, valid while it is eligible.
    Only the token's SHA-256 is kept; a sale consumes the lead."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    contract_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SatisfactionRow(Base):
    """A customer asked how a closed service order or a redeemed service went, once: a rating
    from 1 to 5 and a comment, kept per servicer and per plan. The link to the rating page
    carries this row's id, signed; an answered request takes no second answer."""

    __tablename__ = "satisfaction_requests"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id"),
        Index("ix_satisfaction_requests_answered_at", "answered_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # service_order | redemption
    subject_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    plan_code: Mapped[str] = mapped_column(String(64))
    servicer_id: Mapped[str | None] = mapped_column(ForeignKey("servicers.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1 to 5
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TrainingResourceRow(Base):
    """A catalog's training resource for a product category, in one language; the catalog's
    load replaces them all."""

    __tablename__ = "training_resources"

    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # the catalog's order
    locale: Mapped[str] = mapped_column(String(16), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
