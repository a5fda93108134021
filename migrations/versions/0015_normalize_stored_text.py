"""rows stored before input was normalized, normalized as input is now: serials and IMEIs
however they were typed, emails, names and references in NFC without invisible characters.
A row whose normalized value another row already holds is reported (on stderr) and left as it
is, never merged: which record is right is for a person to decide.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from entitlements.errors import InvalidInput
from entitlements.identifiers import clean_text, normalize_email, normalize_imei, normalize_serial

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# table, column, the rows that may not be in today's form, how today's input normalizes it,
# whether the column is unique, and the snapshot field that repeats it.
_COLUMNS: list[tuple[str, str, str, Callable[[str], str], bool, str | None]] = [
    ("products", "serial", "serial !~ '^[A-Z0-9]{3,40}$'", normalize_serial, True, "serial"),
    ("products", "imei", "imei !~ '^[0-9]{15}$'", normalize_imei, True, "imei"),
    (
        "customers",
        "external_ref",
        "external_ref IS NOT NFC NORMALIZED OR external_ref ~ '[\u200b\u2060\ufeff]'",
        lambda v: clean_text(v, "external_ref", 128),
        True,
        None,
    ),
    (
        "customers",
        "email",
        "email IS NOT NFC NORMALIZED OR email <> lower(email) OR email ~ '[\u200b\u2060\ufeff]'",
        normalize_email,
        False,
        None,
    ),
    (
        "customers",
        "name",
        "name IS NOT NFC NORMALIZED OR name ~ '[\u200b\u2060\ufeff]'",
        lambda v: clean_text(v, "name", 200),
        False,
        None,
    ),
    (
        "products",
        "order_ref",
        "order_ref IS NOT NFC NORMALIZED OR order_ref ~ '[\u200b\u2060\ufeff]'",
        lambda v: clean_text(v, "order_ref", 128),
        False,
        None,
    ),
]


def report(line: str) -> None:
    print(f"0015 normalize: {line}", file=sys.stderr)


def upgrade() -> None:
    bind = op.get_bind()
    for name, column, suspect, normalize, unique, snapshot_field in _COLUMNS:
        table = sa.table(name, sa.column("id"), sa.column(column))
        key, field = table.c.id, table.c[column]
        rows = bind.execute(sa.select(key, field).where(sa.text(suspect)).order_by(key)).all()
        for row_id, value in rows:
            try:
                normalized = normalize(value)
            except InvalidInput as exc:
                report(f"{name} {row_id}: {column} {value!r} kept as it is ({exc.detail})")
                continue
            if normalized == value:
                continue
            if unique:
                holder = bind.execute(sa.select(key).where(field == normalized, key != row_id)).scalar()
                if holder is not None:
                    report(
                        f"{name} {row_id}: {column} {value!r} is {normalized!r} once normalized, "
                        f"which {holder} already has: both kept for review, not merged"
                    )
                    continue
            bind.execute(sa.update(table).where(key == row_id).values({column: normalized}))
            if snapshot_field is not None:
                bind.execute(
                    sa.text(
                        "UPDATE products SET entitlement = jsonb_set(entitlement::jsonb, "
                        "CAST(:path AS text[]), to_jsonb(CAST(:value AS text)))::text WHERE id = :id"
                    ),
                    {"path": [snapshot_field], "value": normalized, "id": row_id},
                )


def downgrade() -> None:
    """Normalized text stays normalized: there is nothing to undo."""
