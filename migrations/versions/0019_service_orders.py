"""repair centres (servicers), their keys, service orders, and each approved claim's fulfilment

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servicers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),  # JSON list
        sa.Column("countries", sa.Text(), nullable=False),  # JSON list; empty: every country
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column(
        "api_keys", sa.Column("servicer_id", sa.String(40), sa.ForeignKey("servicers.id"), nullable=True)
    )
    op.create_table(
        "service_orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("claim_id", sa.String(40), sa.ForeignKey("claims.id"), nullable=False, unique=True),
        sa.Column("contract_id", sa.String(40), sa.ForeignKey("contracts.id"), nullable=False),
        sa.Column("product_id", sa.String(40), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("servicer_id", sa.String(40), sa.ForeignKey("servicers.id"), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payable", sa.BigInteger(), nullable=False),
        sa.Column("estimate", sa.Text(), nullable=True),  # JSON: parts, labour
        sa.Column("estimate_approved_by", sa.String(64), nullable=True),
        sa.Column("cost", sa.Text(), nullable=True),  # JSON: parts, labour, shipping
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_service_orders_servicer", "service_orders", ["servicer_id", "created_at"])
    op.create_index("ix_service_orders_status", "service_orders", ["status", "category", "country"])
    op.add_column("claims", sa.Column("fulfilment", sa.String(24), nullable=True))
    op.add_column("claims", sa.Column("fulfilment_details", sa.Text(), nullable=True))  # JSON
    op.add_column("claims", sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("fulfilled_at", "fulfilment_details", "fulfilment"):
        op.drop_column("claims", column)
    op.drop_index("ix_service_orders_status", "service_orders")
    op.drop_index("ix_service_orders_servicer", "service_orders")
    op.drop_table("service_orders")
    op.drop_column("api_keys", "servicer_id")
    op.drop_table("servicers")
