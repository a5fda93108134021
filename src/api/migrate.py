"""Run the Alembic history from code (CLI, tests) without a working directory assumption."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def described_by_models(name: str | None, type_: str, _parents: object) -> bool:
    """Whether the models describe this table: the job queue's tables are PgQueuer's (migration
    0006), not ours to compare."""
    return not (type_ == "table" and name is not None and name.startswith("pgqueuer"))


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
