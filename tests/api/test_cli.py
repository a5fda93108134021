"""The operator's CLI against a real database: the tests' server, or with no DATABASE_URL the
embedded one under COVERLINE_VAR_DIR."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import NOT_MIGRATED, main
from tests.conftest import fresh_database
from tests.live import coverline, modules_loaded_by

CATALOG = b"""
[[plans]]
code = "cli-test-tv"
version = 1
term_months = 36
billing = "upfront"
[plans.texts.en]
name = "TV Care"
summary = "s"
terms = "t"
[[plans.coverages]]
kind = "mechanical_breakdown"
[plans.eligibility]
categories = ["tv"]
[[plans.prices]]
currency = "SEK"
product_price_min = 0
price = 99900
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_admin_url: str) -> Iterator[CliRunner]:
    with fresh_database(postgres_admin_url, "coverline_cli") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("COVERLINE_VAR_DIR", str(tmp_path))
        monkeypatch.chdir(tmp_path)
        runner = CliRunner()
        assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
        yield runner


def test_with_no_database_url_each_command_runs_on_the_embedded_server_and_its_data_stays(
    tmp_path: Path,
) -> None:
    """Each command starts the embedded server under COVERLINE_VAR_DIR and stops it when it ends;
    what one command wrote, the next one reads."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"COVERLINE_VAR_DIR": str(tmp_path)}

    def run(*args: str) -> str:
        return coverline(*args, env=env)

    assert "database at head" in run("db", "upgrade")
    key_id = run("keys", "create", "--name", "kept", "--scope", "support").split()[0]
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()  # stopped with the command
    assert key_id in run("keys", "list")


def test_a_database_never_migrated_is_named_in_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_admin_url: str
) -> None:
    with fresh_database(postgres_admin_url, "coverline_cli_empty") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("COVERLINE_VAR_DIR", str(tmp_path))
        runner = CliRunner()
        for command in (["keys", "list"], ["servicers", "list"], ["serve", "--port", "1"]):
            result = runner.invoke(main, command)
            assert result.exit_code == 1, (command, result.output)
            assert result.output == f"Error: {NOT_MIGRATED}\n", command
        assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
        assert runner.invoke(main, ["keys", "list"]).exit_code == 0


def test_catalog_load_publishes_once_and_refuses_edits(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_bytes(CATALOG)
    first = cli.invoke(main, ["catalog", "load", str(path)])
    assert first.exit_code == 0, first.output
    assert "cli-test-tv v1: published" in first.output
    again = cli.invoke(main, ["catalog", "load", str(path)])
    assert "cli-test-tv v1: unchanged" in again.output
    path.write_bytes(CATALOG.replace(b"price = 99900", b"price = 89900"))
    edited = cli.invoke(main, ["catalog", "load", str(path)])
    assert edited.exit_code != 0
    assert "publish version 2 instead" in edited.output
    path.write_bytes(
        CATALOG.replace(b"price = 99900", b"price = 89900").replace(b"version = 1", b"version = 2")
    )
    assert "cli-test-tv v2: published" in cli.invoke(main, ["catalog", "load", str(path)]).output


def test_catalog_validate_reports_paths(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(CATALOG.replace(b'billing = "upfront"', b'billing = "weekly"'))
    result = cli.invoke(main, ["catalog", "validate", str(path)])
    assert result.exit_code != 0
    assert "$.plans[0].billing" in result.output


def test_keys_are_shown_once_listed_by_hint_and_revocable(cli: CliRunner) -> None:
    created = cli.invoke(main, ["keys", "create", "--name", "help desk", "--scope", "support"])
    assert created.exit_code == 0, created.output
    raw = created.output.split("key (shown once): ")[1].strip()
    key_id = created.output.split()[0]
    assert raw.startswith("sk_test_")
    listing = cli.invoke(main, ["keys", "list"]).output
    assert key_id in listing
    assert raw not in listing
    assert "active" in listing
    assert cli.invoke(main, ["keys", "revoke", key_id]).exit_code == 0
    assert "revoked" in cli.invoke(main, ["keys", "list"]).output
    assert cli.invoke(main, ["keys", "create", "--name", "x"]).exit_code != 0  # a secret key needs a scope


def test_demo_keys_are_made_once(cli: CliRunner, tmp_path: Path) -> None:
    env_file = tmp_path / "demo.env"
    first = cli.invoke(main, ["demo-keys", "--env-file", str(env_file)])
    assert first.exit_code == 0, first.output
    assert "COVERLINE_PK=pk_test_" in env_file.read_text()
    second = cli.invoke(main, ["demo-keys", "--env-file", str(env_file)])
    assert "exist already" in second.output
    assert len(env_file.read_text().splitlines()) == 5


def test_reconcile_writes_json_or_csv_and_reports_progress(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "recon.csv"
    result = cli.invoke(
        main,
        [
            "reconcile",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-12-01T00:00:00Z",
            "--format",
            "csv",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith(
        "category,currency,ledger_id,ledger_amount,stripe_id,stripe_amount,stripe_ids"
    )
    as_json = cli.invoke(
        main, ["reconcile", "--from", "2026-11-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z"]
    )
    assert '"missing_in_ledger": 0' in as_json.output
    bad = cli.invoke(main, ["reconcile", "--from", "2026-11-01", "--to", "2026-12-01T00:00:00Z"])
    assert bad.exit_code != 0
    swapped = cli.invoke(
        main, ["reconcile", "--from", "2026-12-01T00:00:00Z", "--to", "2026-11-01T00:00:00Z"]
    )
    assert swapped.exit_code == 2 and "`--from` comes before `--to`" in swapped.output


def test_the_commands_that_manage_keys_load_no_web_framework() -> None:
    """`coverline keys …`, `servicers …` and `catalog …` import neither Litestar nor the app: on
    this machine a `keys list` took 1.5 s with Litestar left out, 2.0 s with it."""
    modules = modules_loaded_by("api.cli")
    assert {"api.cli", "api.keys", "sqlalchemy"} <= modules
    assert not {"litestar", "api.app", "api.auth"} & modules


def test_a_servicer_is_created_with_the_categories_as_the_readme_writes_them(cli: CliRunner) -> None:
    made = cli.invoke(
        main, ["servicers", "create", "--name", "CLI Lab", "--category", "phone", "--country", "us"]
    )
    assert made.exit_code == 0, made.output
    listed = cli.invoke(main, ["servicers", "list"])
    assert "CLI Lab" in listed.output and "phone" in listed.output and "US" in listed.output


@pytest.mark.parametrize("name", ["x" * 5000, "ops\u202edesk", "bell\u0007"])
def test_a_key_name_is_checked_as_every_name_is_in_one_line(cli: CliRunner, name: str) -> None:
    made = cli.invoke(main, ["keys", "create", "--name", name, "--scope", "support"])
    assert made.exit_code == 1 and "name" in made.output and "Traceback" not in made.output
    assert len(made.output.splitlines()) == 1, made.output
