"""room for in-place updates of contracts and products

Every lifecycle write bumps its contract's revision and rewrites its product's entitlement
snapshot. With free space left in each page, PostgreSQL writes the new row version beside the old
one without touching the indexes (a heap-only update): on the webhook benchmark, every snapshot
rewrite became one. Pages written before this keep no room until they are rewritten
(`VACUUM FULL contracts, products`, or `pg_repack` online).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("contracts", "products")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 85)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
