"""Typed settings from the environment. Read in the app factory, never at import."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import msgspec

from api.files import write_private
from entitlements.money import is_currency
from entitlements.offers.rules import OfferKeyring


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class MissingSetting(RuntimeError):
    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"{variable} must be set: {why}")
        self.variable = variable


# A process's fewest connections: two for each of its pools, the session's pool its overflow, and
# a job worker the queue's own.
MIN_CONNECTIONS = 7


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    environment: Environment = Environment.DEVELOPMENT
    database_url: str | None = None  # None: the embedded PostgreSQL under var_dir (development)
    var_dir: Path = Path("var")
    offer_keys: OfferKeyring
    offer_ttl_seconds: int = 3600
    log_format: str = "console"  # console | json
    log_level: str = "INFO"
    max_body_bytes: int = 1_048_576
    # Requests a minute per secret key (by its id), and per publishable key and client address,
    # across every worker; 0 turns one off. Workers lease tokens from the shared bucket in batches.
    rate_limit_per_minute: int = 120_000
    publishable_rate_limit_per_minute: int = 600
    rate_limit_batch: int = 100
    # The most a product's price or a claim's amount may be, per currency in minor units, in place
    # of the defaults (`entitlements.money.DEFAULT_CEILINGS`: about USD 100,000 each).
    amount_ceilings: dict[str, int] = {}
    cors_origins: tuple[str, ...] = ("*",)
    db_connections: int = 30  # per process (a server worker, a job worker), split across its pools
    stripe_api_key: str | None = None  # unset: the offline sandbox gateway
    stripe_api_base: str | None = None  # another Stripe-compatible server (localstripe in tests)
    # Test mode only: new Stripe customers are made on this test clock, to rehearse renewals.
    stripe_test_clock: str | None = None
    stripe_webhook_secrets: tuple[str, ...]  # all valid during a rotation; the first is current
    # Stored Idempotency-Key answers are sealed with this secret (they hold client secrets and
    # personal data); a request in flight is taken over by a retry after the lease, which outlasts
    # a Stripe call with its retries; answers larger than the cap are not kept.
    replay_key: str
    idempotency_lease_seconds: float = 65.0
    replay_max_bytes: int = 65_536
    key_cache_seconds: float = 2.0  # how long a worker trusts a key lookup; a revocation waits this long
    # Jobs (`coverline worker`): attempts, then backoff from the first delay, doubling up to the
    # last; a job is taken over when its worker has not renewed its lease for `job_lease_seconds`.
    job_attempts: int = 10
    job_retry_seconds: float = 10.0
    job_retry_max_seconds: float = 3600.0
    job_lease_seconds: float = 30.0
    job_poll_seconds: float = 5.0  # new jobs are announced at once; this bounds the wait if not
    # Outbound events: the first retry's delay, doubling with jitter up to the cap; an endpoint
    # still failing once an event is this old is disabled. Each POST's timeout and how much of an
    # answer is read (and logged).
    webhook_retry_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_give_up_seconds: int = 3 * 24 * 3600
    webhook_timeout_seconds: float = 10.0
    webhook_response_bytes: int = 1024
    # Outreach: a product registered without a plan gets a lead this long after, while eligible;
    # the lead's link is this template with `{token}` (none: the event carries the token alone).
    lead_after_hours: float = 24.0
    lead_url_template: str | None = None
    # Email to customers: through SMTP when set (smtp://user:pass@host:587, STARTTLS when the
    # server offers it; smtps://… for TLS), else written under var_dir/outbox. Links in letters
    # (unsubscribe) start with `public_url`.
    smtp_url: str | None = None
    # A claim's evidence: where the files live (`file`: under var_dir/evidence; `s3://bucket/prefix`
    # with `s3_endpoint_url` for any S3-compatible store, credentials as boto3 finds them), the
    # largest file taken, and how long a customer's upload link lasts.
    evidence_store: str = "file"
    s3_endpoint_url: str | None = None
    evidence_max_bytes: int = 10 * 1024 * 1024
    evidence_max_files: int = 20  # per claim: a link without a key must not fill the store
    upload_link_hours: float = 72.0
    mail_from: str = "Coverline <no-reply@coverline.invalid>"
    public_url: str = "http://127.0.0.1:8000"
    # Pages: how long a console sign-in and a portal visit last, and a portal link.
    console_session_seconds: int = 3600
    portal_session_seconds: int = 3600
    portal_link_days: int = 7
    # Satisfaction: how long a rating link stays good, and the merchant's review page (offered to
    # every customer who answers, whatever their rating).
    satisfaction_link_days: int = 14
    # Days after a sale that the "getting started" letter goes out (included services, training).
    getting_started_days: float = 3.0
    review_url: str | None = None
    # The demo merchant behind /demo/checkout (development only): the keys `coverline demo-keys`
    # wrote to var/demo-keys.env. Without them the demo page says how to get them.
    demo_publishable_key: str | None = None
    demo_secret_key: str | None = None

    @property
    def production(self) -> bool:
        return self.environment is Environment.PRODUCTION


def smtp_url(env: Mapping[str, str]) -> str | None:
    url = env.get("SMTP_URL") or None
    if url is not None and not url.startswith(("smtp://", "smtps://")):
        raise MissingSetting("SMTP_URL", f"expected smtp://… or smtps://…, got {url.split(':')[0]!r}")
    return url


def lead_url_template(env: Mapping[str, str]) -> str | None:
    """`COVERLINE_LEAD_URL`: the merchant's page for a lead, with `{token}` where its token goes."""
    template = env.get("COVERLINE_LEAD_URL") or None
    if template is None:
        return None
    local = template.startswith(("http://127.0.0.1", "http://localhost"))
    if template.count("{token}") != 1 or not (template.startswith("https://") or local):
        raise MissingSetting(
            "COVERLINE_LEAD_URL", f"expected an https:// URL with {{token}} once, got {template!r}"
        )
    return template


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise MissingSetting(name, f"expected an integer, got {raw!r}") from None


def _ceilings(raw: str | None) -> dict[str, int]:
    """`USD=10000000,PHP=580000000`: a currency's ceiling in minor units, each."""
    found: dict[str, int] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        currency, _, amount = item.strip().partition("=")
        if not (is_currency(currency) and amount.isdigit() and int(amount) < 2**63):
            raise MissingSetting("COVERLINE_AMOUNT_CEILINGS", f"expected CUR=minor units, got {item!r}")
        found[currency] = int(amount)
    return found


def _review_url(raw: str | None) -> str | None:
    """The merchant's review page: an https (or http) URL, or none."""
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")) or any(c.isspace() or c in "<>\"'" for c in raw):
        raise MissingSetting("COVERLINE_REVIEW_URL", f"expected an http(s) URL, got {raw!r}")
    return raw


def _at_least(least: int, env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < least:
        raise MissingSetting(name, f"expected {least} or more, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise MissingSetting(name, f"expected a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise MissingSetting(name, f"expected a finite number of 0 or more, got {raw!r}")
    return value


def _development_secret(var_dir: Path, name: str) -> str:
    """A secret made once per checkout and kept under var/, so `make run` can restart."""
    path = var_dir / "dev-secrets.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if name not in known:
        known[name] = secrets.token_urlsafe(48)
        var_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(known).encode())
    return known[name]


def _development_offer_keys(var_dir: Path) -> OfferKeyring:
    return OfferKeyring.from_mapping({"dev-1": _development_secret(var_dir, "offer-key-dev-1").encode()})


def evidence_store(env: Mapping[str, str]) -> str:
    store = env.get("COVERLINE_EVIDENCE_STORE", "file").strip() or "file"
    if store != "file" and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w./-]*)?", store):
        raise MissingSetting("COVERLINE_EVIDENCE_STORE", "`file`, or s3://bucket[/prefix]")
    return store


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    try:
        environment = Environment(env.get("COVERLINE_ENV", "development"))
    except ValueError:
        raise MissingSetting("COVERLINE_ENV", "use `development` or `production`") from None
    production = environment is Environment.PRODUCTION

    database_url = env.get("DATABASE_URL") or None
    if database_url is None and production:
        raise MissingSetting("DATABASE_URL", "production needs a PostgreSQL URL")
    var_dir = Path(env.get("COVERLINE_VAR_DIR") or "var")

    offer_spec = env.get("COVERLINE_OFFER_KEYS", "")
    if offer_spec:
        try:
            keyring = OfferKeyring.parse(offer_spec)
        except ValueError as exc:
            raise MissingSetting("COVERLINE_OFFER_KEYS", str(exc)) from None
    elif production:
        raise MissingSetting("COVERLINE_OFFER_KEYS", "offers cannot be signed without a key")
    else:
        keyring = _development_offer_keys(var_dir)

    stripe_api_key = env.get("STRIPE_API_KEY") or None
    webhook_secrets = tuple(x.strip() for x in env.get("STRIPE_WEBHOOK_SECRET", "").split(",") if x.strip())
    if production and not stripe_api_key:
        raise MissingSetting("STRIPE_API_KEY", "production takes payments through Stripe")
    if stripe_api_key and not webhook_secrets:
        raise MissingSetting("STRIPE_WEBHOOK_SECRET", "Stripe's events cannot be verified without it")
    if not webhook_secrets:
        webhook_secrets = (_development_secret(var_dir, "whsec_sandbox"),)

    test_clock = env.get("STRIPE_TEST_CLOCK") or None
    if test_clock and (stripe_api_key or "").startswith(("sk_live", "rk_live")):
        raise MissingSetting(
            "STRIPE_TEST_CLOCK", "test clocks exist in test mode only: unset it with a live key"
        )

    replay_key = env.get("COVERLINE_REPLAY_KEY") or None
    if replay_key is None:
        if production:
            raise MissingSetting("COVERLINE_REPLAY_KEY", "stored Idempotency-Key answers are sealed with it")
        replay_key = _development_secret(var_dir, "replay-key")
    elif len(replay_key) < 32:
        raise MissingSetting("COVERLINE_REPLAY_KEY", "use a random secret of at least 32 characters")

    origins = tuple(o.strip() for o in env.get("COVERLINE_CORS_ORIGINS", "*").split(",") if o.strip())
    return Settings(
        environment=environment,
        database_url=database_url,
        var_dir=var_dir,
        offer_keys=keyring,
        # A hosted payment page lives as long as its offer, and Stripe's live 30 minutes at least.
        offer_ttl_seconds=_at_least(1800, env, "COVERLINE_OFFER_TTL_SECONDS", 3600),
        replay_key=replay_key,
        webhook_retry_seconds=_float(env, "COVERLINE_WEBHOOK_RETRY_SECONDS", 5.0),
        webhook_retry_max_seconds=_float(env, "COVERLINE_WEBHOOK_RETRY_MAX_SECONDS", 3600.0),
        webhook_give_up_seconds=_int(env, "COVERLINE_WEBHOOK_GIVE_UP_SECONDS", 3 * 24 * 3600),
        webhook_timeout_seconds=_float(env, "COVERLINE_WEBHOOK_TIMEOUT_SECONDS", 10.0),
        idempotency_lease_seconds=_float(env, "COVERLINE_IDEMPOTENCY_LEASE_SECONDS", 65.0),
        replay_max_bytes=_int(env, "COVERLINE_REPLAY_MAX_BYTES", 65_536),
        log_format=log_format(env),
        log_level=log_level(env),
        max_body_bytes=_int(env, "COVERLINE_MAX_BODY_BYTES", 1_048_576),
        rate_limit_per_minute=_at_least(0, env, "COVERLINE_RATE_LIMIT_PER_MINUTE", 120_000),
        publishable_rate_limit_per_minute=_at_least(
            0, env, "COVERLINE_PUBLISHABLE_RATE_LIMIT_PER_MINUTE", 600
        ),
        rate_limit_batch=_at_least(1, env, "COVERLINE_RATE_LIMIT_BATCH", 100),
        amount_ceilings=_ceilings(env.get("COVERLINE_AMOUNT_CEILINGS")),
        cors_origins=origins or ("*",),
        db_connections=_at_least(MIN_CONNECTIONS + 1, env, "COVERLINE_DB_CONNECTIONS", 30),
        key_cache_seconds=_float(env, "COVERLINE_KEY_CACHE_SECONDS", 2.0),
        job_attempts=_int(env, "COVERLINE_JOB_ATTEMPTS", 10),
        job_retry_seconds=_float(env, "COVERLINE_JOB_RETRY_SECONDS", 10.0),
        job_retry_max_seconds=_float(env, "COVERLINE_JOB_RETRY_MAX_SECONDS", 3600.0),
        job_lease_seconds=_float(env, "COVERLINE_JOB_LEASE_SECONDS", 30.0),
        job_poll_seconds=_float(env, "COVERLINE_JOB_POLL_SECONDS", 5.0),
        lead_after_hours=_float(env, "COVERLINE_LEAD_AFTER_HOURS", 24.0),
        lead_url_template=lead_url_template(env),
        smtp_url=smtp_url(env),
        evidence_store=evidence_store(env),
        s3_endpoint_url=env.get("COVERLINE_S3_ENDPOINT_URL") or None,
        evidence_max_bytes=_at_least(1024, env, "COVERLINE_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024),
        evidence_max_files=_at_least(1, env, "COVERLINE_EVIDENCE_MAX_FILES", 20),
        upload_link_hours=_float(env, "COVERLINE_UPLOAD_LINK_HOURS", 72.0),
        mail_from=env.get("COVERLINE_MAIL_FROM") or "Coverline <no-reply@coverline.invalid>",
        public_url=env.get("COVERLINE_PUBLIC_URL") or "http://127.0.0.1:8000",
        console_session_seconds=_int(env, "COVERLINE_CONSOLE_SESSION_SECONDS", 3600),
        portal_session_seconds=_int(env, "COVERLINE_PORTAL_SESSION_SECONDS", 3600),
        portal_link_days=_int(env, "COVERLINE_PORTAL_LINK_DAYS", 7),
        satisfaction_link_days=_at_least(1, env, "COVERLINE_SATISFACTION_LINK_DAYS", 14),
        getting_started_days=_float(env, "COVERLINE_GETTING_STARTED_DAYS", 3.0),
        review_url=_review_url(env.get("COVERLINE_REVIEW_URL")),
        demo_publishable_key=None if production else env.get("COVERLINE_PK") or None,
        demo_secret_key=None if production else env.get("COVERLINE_SK_CHECKOUT") or None,
        stripe_api_key=stripe_api_key,
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        stripe_test_clock=test_clock,
        stripe_webhook_secrets=webhook_secrets,
    )


def log_format(env: Mapping[str, str]) -> str:
    production = env.get("COVERLINE_ENV", "development") == "production"
    return env.get("COVERLINE_LOG_FORMAT", "json" if production else "console")


def log_level(env: Mapping[str, str]) -> str:
    return env.get("COVERLINE_LOG_LEVEL", "INFO").upper()
