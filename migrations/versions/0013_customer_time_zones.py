"""customers' time zones: the day an incident happened and the dates a customer is shown are
theirs; filled in for customers whose country keeps one clock (the others stay NULL: UTC)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from entitlements.zones import default_zone

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("time_zone", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    countries = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT country FROM customers"))]
    for country in countries:
        zone = default_zone(country)
        if zone is not None:
            bind.execute(
                sa.text("UPDATE customers SET time_zone = :zone WHERE country = :country"),
                {"zone": zone, "country": country},
            )
    # Each product's snapshot carries its owner's zone, so a check shows the dates in it at once.
    # (Approved claims inside a snapshot keep their UTC day until the product's record next
    # changes and the snapshot is rebuilt.)
    bind.execute(
        sa.text(
            "UPDATE products SET entitlement = jsonb_set(entitlement::jsonb, '{time_zone}', "
            "to_jsonb(c.time_zone))::text FROM customers c "
            "WHERE c.id = products.customer_id AND c.time_zone IS NOT NULL"
        )
    )


def downgrade() -> None:
    op.drop_column("customers", "time_zone")
