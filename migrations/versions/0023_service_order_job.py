"""what a repair centre needs to know of the job: the product's SKU and serial, and the incident

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("service_orders", sa.Column("sku", sa.String(64), nullable=False, server_default=""))
    op.add_column("service_orders", sa.Column("serial", sa.String(40), nullable=True))
    op.add_column(
        "service_orders", sa.Column("incident_kind", sa.String(32), nullable=False, server_default="")
    )
    op.add_column("service_orders", sa.Column("incident_date", sa.Date(), nullable=True))
    op.add_column("service_orders", sa.Column("problem", sa.Text(), nullable=True))
    for column in ("sku", "incident_kind"):
        op.alter_column("service_orders", column, server_default=None)


def downgrade() -> None:
    for column in ("problem", "incident_date", "incident_kind", "serial", "sku"):
        op.drop_column("service_orders", column)
