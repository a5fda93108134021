"""claims' and redemptions' references stored before references were compared as typed, in
today's form (NFC, trimmed, without invisible characters): a retry of such a request, cleaned as
input is now, finds its row again instead of filing a second claim or using a service twice. A
row whose cleaned reference another row already holds is reported (on stderr) and left as it is,
never merged, as 0015 does.

(A lifecycle fact's reference is left: its coverage period names it too, and the references
Stripe's events give are its ids, which cleaning does not change.)

Revision ID: 0032
Revises: 0031
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from alembic import op

from entitlements.errors import InvalidInput
from entitlements.identifiers import clean_reference

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

# The rows whose reference may not be in today's form: not NFC, an invisible character, or space
# at either end.
_SUSPECT = "reference IS NOT NFC NORMALIZED OR reference ~ '[\u200b\u2060\ufeff]' OR reference ~ '^\\s|\\s$'"


def report(line: str) -> None:
    print(f"0032 normalize: {line}", file=sys.stderr)


def upgrade() -> None:
    bind = op.get_bind()
    for name in ("claims", "benefit_redemptions"):
        table = sa.table(name, sa.column("id"), sa.column("reference"))
        key, field = table.c.id, table.c.reference
        rows = bind.execute(sa.select(key, field).where(sa.text(_SUSPECT)).order_by(key)).all()
        for row_id, value in rows:
            try:
                cleaned = clean_reference(value)
            except InvalidInput as exc:
                report(f"{name} {row_id}: reference {value!r} kept as it is ({exc.detail})")
                continue
            if cleaned == value:
                continue
            holder = bind.execute(sa.select(key).where(field == cleaned, key != row_id)).scalar()
            if holder is not None:
                report(
                    f"{name} {row_id}: reference {value!r} is {cleaned!r} once cleaned, which {holder}"
                    " already has: both kept for review, not merged"
                )
                continue
            bind.execute(sa.update(table).where(key == row_id).values(reference=cleaned))


def downgrade() -> None:
    """Cleaned references stay cleaned: there is nothing to undo."""
