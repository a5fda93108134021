"""each product's snapshot names its owner's language: a check that asks for none answers in it

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(
        sa.text(
            "UPDATE products SET entitlement = jsonb_set(entitlement::jsonb, '{locale}', "
            "to_jsonb(c.locale))::text FROM customers c WHERE c.id = products.customer_id"
        )
    )


def downgrade() -> None:
    op.get_bind().execute(sa.text("UPDATE products SET entitlement = (entitlement::jsonb - 'locale')::text"))
