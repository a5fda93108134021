"""a contract's fact is known by its reference and kind: a failed payment keeps its invoice's
reference (it was the reference with ":failed" appended), and the payment of that invoice clears it

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

SUFFIX = ":failed"


def upgrade() -> None:
    op.drop_constraint("pk_contract_events", "contract_events", type_="primary")
    op.execute(
        sa.text(
            "UPDATE contract_events SET reference = left(reference, -length(:suffix))"
            " WHERE kind = 'past_due' AND reference LIKE '%' || :suffix"
        ).bindparams(suffix=SUFFIX)
    )
    op.create_primary_key("pk_contract_events", "contract_events", ["reference", "kind"])


def downgrade() -> None:
    op.drop_constraint("pk_contract_events", "contract_events", type_="primary")
    op.execute(
        sa.text(
            "UPDATE contract_events SET reference = reference || :suffix WHERE kind = 'past_due'"
        ).bindparams(suffix=SUFFIX)
    )
    op.create_primary_key("pk_contract_events", "contract_events", ["reference"])
