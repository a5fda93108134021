import os
from pathlib import Path

import pytest

from api.settings import Environment, MissingSetting, load_settings

PRODUCTION = {
    "COVERLINE_ENV": "production",
    "DATABASE_URL": "postgresql://db/coverline",
    "COVERLINE_OFFER_KEYS": "k:" + "s" * 32,
    "STRIPE_API_KEY": "sk_test_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_new,whsec_old",
    "COVERLINE_REPLAY_KEY": "q" * 40,
}


@pytest.mark.parametrize(
    "missing",
    [
        "DATABASE_URL",
        "COVERLINE_OFFER_KEYS",
        "STRIPE_API_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "COVERLINE_REPLAY_KEY",
    ],
)
def test_production_names_the_missing_variable(missing: str) -> None:
    with pytest.raises(MissingSetting, match=missing):
        load_settings({k: v for k, v in PRODUCTION.items() if k != missing})
    assert load_settings(PRODUCTION).stripe_webhook_secrets == ("whsec_new", "whsec_old")


def test_production_settings_are_read_from_the_environment() -> None:
    settings = load_settings(
        PRODUCTION
        | {
            "COVERLINE_OFFER_KEYS": "k2:" + "s" * 32 + ",k1:" + "r" * 32,
            "COVERLINE_RATE_LIMIT_PER_MINUTE": "600",
        }
    )
    assert settings.environment is Environment.PRODUCTION
    assert settings.offer_keys.signing[0] == "k2"
    assert settings.log_format == "json"
    assert settings.rate_limit_per_minute == 600


def test_development_keeps_its_offer_key_under_var(tmp_path: object) -> None:
    first = load_settings({"COVERLINE_VAR_DIR": str(tmp_path)})
    again = load_settings({"COVERLINE_VAR_DIR": str(tmp_path)})
    assert first.offer_keys == again.offer_keys
    assert first.database_url is None  # the embedded server, started by whoever connects


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COVERLINE_ENV", "staging"),
        ("COVERLINE_MAX_BODY_BYTES", "lots"),
        ("COVERLINE_OFFER_KEYS", "short:x"),
        ("COVERLINE_JOB_RETRY_SECONDS", "soon"),
        ("COVERLINE_KEY_CACHE_SECONDS", "nan"),
        ("COVERLINE_REPLAY_KEY", "too-short"),
    ],
)
def test_bad_values_name_their_variable(variable: str, value: str, tmp_path: object) -> None:
    with pytest.raises(MissingSetting, match=variable):
        load_settings({variable: value, "COVERLINE_VAR_DIR": str(tmp_path)})


def test_files_with_secrets_or_personal_data_are_created_private_whatever_the_umask(tmp_path: Path) -> None:
    from api.files import append_private, write_private

    old = os.umask(0)  # the widest: a file created with default modes would be 0666
    try:
        write_private(tmp_path / "letter.eml", b"To: someone")
        append_private(tmp_path / "keys.env", "KEY=1\n")
        append_private(tmp_path / "keys.env", "KEY=2\n")
    finally:
        os.umask(old)
    assert (tmp_path / "letter.eml").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys.env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys.env").read_text() == "KEY=1\nKEY=2\n"
    assert not list(tmp_path.glob("*.partial"))
