"""`coverline`: the operator's command line."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import click
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from api.embedded import database_url
from api.files import append_private
from api.keys import IssuedKey, KeyKind, Scope, find_key_by_name, issue_key, list_keys, revoke_key
from api.settings import Environment, Settings, load_settings
from entitlements.catalog import Plan, ProductCategory, decode_catalog, decode_catalog_file
from entitlements.corpus import write_corpus
from entitlements.errors import DomainError
from entitlements.repairs.service import ServicerInput, create_servicer, get_servicer, list_servicers
from entitlements.store.base import create_engine, session_factory, utcnow
from entitlements.store.plans import PlanRepository, PublishOutcome
from entitlements.store.resources import replace_resources

if TYPE_CHECKING:
    from billing.webhooks.service import SyncReport

T = TypeVar("T")
DEMO_KEYS: tuple[tuple[str, KeyKind, list[Scope]], ...] = (
    ("demo checkout page", KeyKind.PUBLISHABLE, []),
    ("demo merchant back end", KeyKind.SECRET, [Scope.CHECKOUT]),
    ("demo support desk", KeyKind.SECRET, [Scope.SUPPORT]),
    ("demo finance", KeyKind.SECRET, [Scope.FINANCE]),
    ("demo admin", KeyKind.SECRET, [Scope.ADMIN]),
)


def _database_url(settings: Settings | None = None) -> str:
    """The configured server, or the embedded one (started, and stopped when this command ends)."""
    settings = settings or load_settings()
    return database_url(settings.database_url, settings.var_dir)


def _in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database and commit it."""

    async def run() -> T:
        engine = create_engine(_database_url())
        try:
            async with session_factory(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


NOT_MIGRATED = "the database has no Coverline schema yet: run `coverline db upgrade` first (`make run` does)"


def _not_migrated(error: BaseException | None) -> bool:
    """Whether PostgreSQL refused a statement because one of our tables does not exist."""
    while error is not None:
        if isinstance(error, asyncpg.UndefinedTableError):
            return True
        error = error.__cause__ or error.__context__
    return False


class _Commands(click.Group):
    """A command run against a database that was never migrated says so, in one line, instead of
    a driver's traceback (the migrations themselves excepted)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as error:
            if ctx.invoked_subcommand != "db" and _not_migrated(error):
                raise click.ClickException(NOT_MIGRATED) from None
            raise


@click.group(cls=_Commands)
def main() -> None:
    """Coverline: service plans, offers and entitlement checks."""
    from api.logs import configure_logging
    from api.settings import log_format, log_level

    # Log lines go to stderr: a command's stdout is its output (JSON, CSV), nothing else.
    configure_logging(log_format(os.environ), log_level(os.environ), sys.stderr)


# --- database ------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    from api.migrate import upgrade

    upgrade(_database_url(), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision", default="base")
def db_downgrade(revision: str) -> None:
    from api.migrate import downgrade

    downgrade(_database_url(), revision)
    click.echo(f"database at {revision}")


# --- catalog -------------------------------------------------------------------------------


@main.group()
def catalog() -> None:
    """The plan catalog file."""


def _read_catalog(path: Path) -> list[Plan]:
    plans, problems = decode_catalog(path.read_bytes())
    if problems:
        for problem in problems:
            click.echo(f"{path}: {problem.path}: {problem.message}", err=True)
        raise click.ClickException(f"{len(problems)} problem(s) in {path}")
    return list(plans)


@catalog.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def catalog_validate(file: Path) -> None:
    """Check a catalog file and report every problem with its path."""
    plans = _read_catalog(file)
    click.echo(f"{file}: {len(plans)} plan version(s), no problems")


@catalog.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def catalog_load(file: Path) -> None:
    """Publish the new plan versions in FILE (published versions never change), and load its
    training resources in place of those loaded before."""
    plans, resources, problems = decode_catalog_file(file.read_bytes())
    if problems:
        _read_catalog(file)
    results = _in_session(lambda s: PlanRepository(s).publish(plans))
    for r in results:
        click.echo(f"{r.code} v{r.version}: {r.outcome.value}" + (f" — {r.reason}" if r.reason else ""))
    if any(r.outcome is PublishOutcome.REFUSED for r in results):
        raise click.ClickException("nothing was published")
    loaded = _in_session(lambda s: replace_resources(s, resources))
    click.echo(f"training resources: {loaded}")


@catalog.command("texts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("docs/texts"))
def catalog_texts(file: Path, out: Path) -> None:
    """Write the reviewed corpus: every summary variant and every plan's terms, per language."""
    written = write_corpus(_read_catalog(file), out)
    click.echo(f"wrote {len(written)} files under {out}")


# --- Stripe -------------------------------------------------------------------------------------


def _instant(value: str, option: str) -> dt.datetime:
    """An ISO instant with its offset, read as the API reads one."""
    from api.views import parse_instant

    try:
        parsed = parse_instant(value, option)
    except DomainError as exc:
        raise click.BadParameter(exc.detail, param_hint=option) from None
    assert parsed is not None
    return parsed


@main.group("stripe")
def stripe_group() -> None:
    """The catalog in Stripe (or the sandbox)."""


@stripe_group.command("sync-catalog")
def stripe_sync_catalog() -> None:
    """Create the Stripe products and prices the published plans need; found again by lookup
    key, so running it twice creates nothing new."""
    from api.app import make_gateway
    from billing.catalog_sync import sync_catalog

    settings = load_settings()
    gateway = make_gateway(settings)
    plans = _in_session(lambda s: PlanRepository(s).latest())
    report = _gateway_call(lambda: asyncio.run(sync_catalog(gateway, plans)))
    for key in report.created:
        click.echo(f"created {key}")
    for key in report.skipped:
        click.echo(f"skipped {key} (a one-off price: this Stripe server has Plans only)")
    made, there, skipped = len(report.created), len(report.found), len(report.skipped)
    click.echo(f"{made} price(s) created, {there} already there, {skipped} skipped")


def _gateway_call(work: Callable[[], T]) -> T:
    """A gateway error is one clear line on stderr, with Stripe's request id, and exit code 2."""
    from billing.gateway import GatewayError

    try:
        return work()
    except GatewayError as exc:
        request = f" (Stripe request {exc.request_id})" if exc.request_id else ""
        click.echo(f"error: {exc}{request}", err=True)
        raise SystemExit(2) from None


@stripe_group.command("webhook-endpoint")
@click.option(
    "--url", required=True, help="where Stripe delivers, e.g. https://api.example.com/v1/stripe/webhooks"
)
def stripe_webhook_endpoint(url: str) -> None:
    """Create the Stripe webhook endpoint at URL with every event Coverline acts on, on the
    pinned API version; or, when it exists, bring its event list up to date. Stripe shows an
    endpoint's signing secret once, when it is created: this prints it then."""
    from api.app import make_gateway
    from billing.stripe_gateway import API_VERSION
    from billing.webhooks.service import HANDLERS

    gateway = make_gateway(load_settings())
    events = sorted(HANDLERS)
    endpoint = _gateway_call(lambda: asyncio.run(gateway.ensure_webhook_endpoint(url, events)))
    if endpoint.created:
        click.echo(f"created {endpoint.id} for {url}: {len(events)} events, API version {API_VERSION}")
        click.echo(f"signing secret (shown once): {endpoint.secret}")
        click.echo("put it in STRIPE_WEBHOOK_SECRET (during a rotation: new,old) and restart the servers")
    else:
        click.echo(f"updated {endpoint.id} for {url}: {len(events)} events")
        click.echo("its signing secret is unchanged (Stripe shows it only when an endpoint is created)")


@stripe_group.command("sync")
@click.option(
    "--since", required=True, help="an ISO instant, e.g. 2026-11-01T00:00:00Z (Stripe keeps 30 days)"
)
@click.option("--until", default=None, help="an ISO instant (exclusive); default: now")
def stripe_sync(since: str, until: str | None) -> None:
    """Fetch the gateway's events in [SINCE, UNTIL) and feed the ones we missed through the
    webhook handler, oldest first: a lost webhook is repaired by this command, not by hand.
    Prints the count per outcome; exits 1 when an event stays unresolved (failed: a re-run
    tries it again; malformed: see the log)."""

    from api.app import make_gateway
    from billing.webhooks.service import sync_events
    from entitlements.store.unit_of_work import session_units

    start = _instant(since, "--since")
    end = _instant(until, "--until") if until else None
    settings = load_settings()

    async def run() -> SyncReport:
        engine = create_engine(_database_url(settings))
        try:
            return await sync_events(
                session_units(session_factory(engine)), make_gateway(settings), start, end
            )
        finally:
            await engine.dispose()

    report = _gateway_call(lambda: asyncio.run(run()))
    counts = ", ".join(f"{outcome} {n}" for outcome, n in sorted(report.counts.items()))
    click.echo(f"{report.seen} event(s): {counts or 'none'}")
    if report.unresolved:
        raise SystemExit(1)


# --- outreach -----------------------------------------------------------------------------------


@main.command("outreach")
@click.option("--now", "at", default=None, help="an ISO instant to sweep as of; default: now")
def outreach_command(at: str | None) -> None:
    """Write the notices due by now (renewal.upcoming, coverage.ending, offer.lead), each once;
    the worker does this every quarter of an hour."""
    from entitlements.outreach import sweep
    from entitlements.store.unit_of_work import session_units

    settings = load_settings()
    now = _instant(at, "--now") if at else dt.datetime.now(dt.UTC)

    async def run() -> str:
        engine = create_engine(_database_url(settings))
        try:
            report = await sweep(
                session_units(session_factory(engine)),
                now,
                keyring=settings.offer_keys,
                lead_after=dt.timedelta(hours=settings.lead_after_hours),
                lead_url=settings.lead_url_template,
                getting_started_after=dt.timedelta(days=settings.getting_started_days),
            )
        finally:
            await engine.dispose()
        return ", ".join(f"{kind} {count}" for kind, count in report.by_kind().items())

    click.echo(asyncio.run(run()))


# --- finance ------------------------------------------------------------------------------------


@main.command("reconcile")
@click.option("--from", "since", required=True, help="an ISO instant, e.g. 2026-11-01T00:00:00Z")
@click.option("--to", "until", required=True, help="an ISO instant (exclusive)")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def reconcile_command(since: str, until: str, fmt: str, out: Path | None) -> None:
    """The ledger against the gateway's balance transactions, with gross, fee and net per currency."""

    import structlog

    from api.app import make_gateway
    from billing.finance.reconcile import Finding, ledger_of, reconcile

    start, end = _instant(since, "--from"), _instant(until, "--to")
    if start >= end:
        raise click.BadParameter("`--from` comes before `--to`", param_hint="--from")
    settings = load_settings()
    interactive = sys.stderr.isatty()
    log = structlog.get_logger("reconcile")

    def progress(count: int) -> None:
        if interactive:
            click.echo(f"\r{count:,} balance transactions read", nl=False, err=True)
        else:
            log.info("reconcile progress", balance_transactions=count)

    async def run() -> bytes:
        engine = create_engine(_database_url(settings))
        try:
            async with session_factory(engine)() as session, session.begin():
                ledger = await ledger_of(session, start, end)
            report = await reconcile(ledger, make_gateway(settings), start, end, progress)
        finally:
            await engine.dispose()
        if interactive:
            click.echo(err=True)
        if fmt == "json":
            return msgspec.json.format(msgspec.json.encode(report)) + b"\n"
        table = io.StringIO()
        writer = csv.writer(table)
        fields = Finding.__struct_fields__
        writer.writerow(fields)
        for finding in report.findings:
            writer.writerow(["" if (v := getattr(finding, k)) is None else v for k in fields])
        return table.getvalue().encode()

    result = _gateway_call(lambda: asyncio.run(run()))
    if out is None:
        sys.stdout.buffer.write(result)
    else:
        out.write_bytes(result)
        click.echo(f"wrote {out}", err=True)


# --- repair centres ---------------------------------------------------------------------------


@main.group()
def servicers() -> None:
    """Repair centres: the categories and countries each serves; keys with `keys create --servicer`."""


@servicers.command("create")
@click.option("--name", required=True)
@click.option(
    "--category",
    "categories",
    multiple=True,
    required=True,
    type=click.Choice([c.value for c in ProductCategory]),  # the values, as the API takes them
)
@click.option("--country", "countries", multiple=True, help="ISO 3166-1 alpha-2; none: every country")
def servicers_create(name: str, categories: tuple[str, ...], countries: tuple[str, ...]) -> None:
    data = ServicerInput(name, [ProductCategory(c) for c in categories], [c.upper() for c in countries])
    try:
        row = _in_session(lambda s: create_servicer(s, data, actor="cli", now=utcnow()))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"{row.id}  {row.name}")


@servicers.command("list")
def servicers_list() -> None:
    for row in _in_session(list_servicers):
        click.echo(f"{row.id}  {row.name}  {row.categories}  {row.countries or '[]'}")


# --- API keys ------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """API keys: shown once at creation, stored hashed."""


def _live() -> bool:
    return load_settings().environment is Environment.PRODUCTION


@keys.command("create")
@click.option("--name", required=True)
@click.option("--publishable", is_flag=True, help="a pk_ key for checkout pages")
@click.option("--scope", "scopes", multiple=True, type=click.Choice([s.value for s in Scope]))
@click.option("--servicer", "servicer_id", help="the repair centre a `servicer` key acts for")
def keys_create(name: str, publishable: bool, scopes: tuple[str, ...], servicer_id: str | None) -> None:
    kind = KeyKind.PUBLISHABLE if publishable else KeyKind.SECRET

    async def create(session: AsyncSession) -> IssuedKey:
        if servicer_id is not None:
            await get_servicer(session, servicer_id)
        chosen = [Scope(x) for x in scopes]
        return await issue_key(
            session, kind=kind, name=name, scopes=chosen, live=_live(), servicer_id=servicer_id
        )

    try:
        issued = _in_session(create)
    except (ValueError, DomainError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{issued.id}  {issued.kind.value}  {' '.join(issued.scopes)}")
    click.echo(f"key (shown once): {issued.key}")


@keys.command("list")
def keys_list() -> None:
    for row in _in_session(list_keys):
        state = "revoked" if row.revoked_at else "active"
        click.echo(
            f"{row.id}  {row.kind:<11}  {row.hint:<18}  {row.scopes or '-':<10}  {state:<7}  {row.name}"
        )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    try:
        _in_session(lambda s: revoke_key(s, key_id))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"{key_id} revoked")


# --- demo and docs -------------------------------------------------------------------------


@main.command("demo-keys")
@click.option(
    "--env-file", type=click.Path(dir_okay=False, path_type=Path), default=Path("var/demo-keys.env")
)
def demo_keys(env_file: Path) -> None:
    """Create the demo keys once (development only) and write them to an env file."""
    if load_settings().environment is Environment.PRODUCTION:
        raise click.ClickException("demo keys are for development only")

    async def create(session: AsyncSession) -> list[IssuedKey]:
        issued = []
        for name, kind, scopes in DEMO_KEYS:
            if await find_key_by_name(session, name) is None:
                issued.append(await issue_key(session, kind=kind, name=name, scopes=scopes, live=False))
        return issued

    issued = _in_session(create)
    if not issued:
        click.echo(f"demo keys exist already; they are in {env_file} (created on the first run)")
        return
    env_file.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{_env_name(k)}={k.key}" for k in issued]
    append_private(env_file, "\n".join(lines) + "\n")
    click.echo("demo API keys (shown once; also saved to " + str(env_file) + "):")
    for k in issued:
        click.echo(f"  {_env_name(k):<22} {k.key}")


def _env_name(key: IssuedKey) -> str:
    if key.kind is KeyKind.PUBLISHABLE:
        return "COVERLINE_PK"
    return "COVERLINE_SK_" + "_".join(s.value.upper() for s in key.scopes)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option(
    "--workers", default=1, show_default=True, help="server processes, each with its own event loop"
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="the server's own log (each request is logged by the app, at COVERLINE_LOG_LEVEL)",
)
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the API: uvicorn on uvloop and httptools, one event loop per worker process. With no
    DATABASE_URL, on the embedded PostgreSQL, which stops with the server."""
    from api.database import check_server
    from api.server import serve as run_server

    settings = load_settings()
    # The workers read the URL from the environment: they join this server, not start their own.
    url = os.environ["DATABASE_URL"] = _database_url(settings)
    try:  # every worker opens up to its budget: together they must fit in the server's connections
        if not asyncio.run(check_server(url, settings.db_connections, workers)):
            raise click.ClickException(NOT_MIGRATED)
    except RuntimeError as refused:
        raise click.ClickException(str(refused)) from None
    run_server(host, port, workers, log_level)


@main.command("worker")
@click.option("--until-idle", is_flag=True, help="stop once no job is left to run (for scripts and tests)")
def worker(until_idle: bool) -> None:
    """Run the jobs that units of work enqueue (calls to Stripe, purges), retried with backoff.
    Run one or more beside the servers; each job runs once, in whichever worker takes it."""
    from api.logs import configure_logging
    from api.worker import run_worker

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(run_worker(settings, until_idle=until_idle))


@main.command("openapi")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def openapi(out: Path | None) -> None:
    """Write the OpenAPI document generated from the app."""
    from api.openapi import render_openapi

    text = render_openapi()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
