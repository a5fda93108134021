"""redemptions of the services a plan includes; a service order is a claim's repair or a visit
a redemption needs

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "benefit_redemptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("reference", sa.String(128), nullable=False, unique=True),
        sa.Column("contract_id", sa.String(40), sa.ForeignKey("contracts.id"), nullable=False),
        sa.Column("product_id", sa.String(40), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_by", sa.String(64), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_benefit_redemptions_contract", "benefit_redemptions", ["contract_id", "redeemed_at"])
    op.alter_column("service_orders", "claim_id", existing_type=sa.String(40), nullable=True)
    op.add_column(
        "service_orders",
        sa.Column(
            "redemption_id",
            sa.String(40),
            sa.ForeignKey("benefit_redemptions.id"),
            nullable=True,
            unique=True,
        ),
    )
    op.create_check_constraint(
        "one_purpose", "service_orders", "(claim_id IS NULL) <> (redemption_id IS NULL)"
    )


def downgrade() -> None:
    op.drop_constraint("ck_service_orders_one_purpose", "service_orders")
    op.drop_column("service_orders", "redemption_id")
    op.alter_column("service_orders", "claim_id", existing_type=sa.String(40), nullable=False)
    op.drop_table("benefit_redemptions")
