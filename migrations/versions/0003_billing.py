"""billing: Stripe events, the ledger, Stripe ids on contracts

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_events_type"), ["type"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entry_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("contract_id", sa.String(length=40), nullable=True),
        sa.Column("stripe_payment_intent", sa.String(length=255), nullable=True),
        sa.Column("stripe_charge", sa.String(length=255), nullable=True),
        sa.Column("stripe_invoice", sa.String(length=255), nullable=True),
        sa.Column("stripe_refund", sa.String(length=255), nullable=True),
        sa.Column("stripe_dispute", sa.String(length=255), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_ledger_entries_contract_id_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("entry_key", name=op.f("uq_ledger_entries_entry_key")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_occurred_at"), ["occurred_at"], unique=False)

    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_contracts_stripe_payment_intent_id"), ["stripe_payment_intent_id"]
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_contracts_stripe_subscription_id"), ["stripe_subscription_id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_contracts_stripe_subscription_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_contracts_stripe_payment_intent_id"), type_="unique")
        batch_op.drop_column("stripe_subscription_id")
        batch_op.drop_column("stripe_payment_intent_id")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_kind"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_contract_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stripe_events_type"))

    op.drop_table("stripe_events")
