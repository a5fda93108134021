"""`make bench`: measured ratios on PostgreSQL, in one run, against the production server.

1. Seeds 1,000,000 contracts (customers, products with their entitlement snapshots, contracts,
   coverage periods, some claims) into a `coverline_bench` database with COPY. A re-run reuses
   the data set when it is already there.
2. Starts the production server (`coverline serve`, 2 workers) and drives it over loopback with wrk at 64
   connections: (a) a bare endpoint of the same app, (b) the entitlement check by random serial,
   (c) the batch check with 100 random serials; then posts signed Stripe events.
3. Prints throughput, p50/p99, the ratios and the workers' RSS, then reconciles 1,000,000
   ledger rows against as many balance transactions.

`--parts checks,mix,webhooks,cost,instances,events,reconciliation` picks what to measure (`make
bench ARGS=...`); every throughput figure is the median of `--runs` (3) runs. `cost` prints the
cost model (bench/costs.py): CPU per request in the workers and in PostgreSQL, round trips and
transactions on the wire, and the database paths alone; `instances` runs two servers and two job
workers on one database and counts stale answers after writes through the other. `mix`
drives the check as real callers mix it, from a sample of the data set's own rows: serials as
typed (lower case, dashes), about 10% misses, customer and contract lookups, with and without
`incident`, `locale` and an `at=` in the past year; every part reports its p99.9 too. `support`
measures, in this process, what asking with `opened_at` adds to a check's answer of a contract
whose plan grants support (two channels, four due-by instants).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # bench.events

from bench.costs import stop

from api.keys import KeyKind, Scope, hash_key
from api.migrate import upgrade
from entitlements.catalog import decode_catalog, encode_plan
from entitlements.coverage import ClaimUse, ContractStatus, Period
from entitlements.money import Money
from entitlements.store.snapshots import ContractSnapshot, ProductSnapshot

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = "coverline_bench"
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB}"
# The demo catalog's phone plan, as published now: every seeded contract is sold under it.
PLAN = (
    "phone-protect-24",
    max(
        p.version
        for p in decode_catalog((ROOT / "catalog" / "demo.toml").read_bytes())[0]
        if p.code == "phone-protect-24"
    ),
)
BENCH_KEY = "sk_test_bench_" + "k" * 32
# The checks are spread over 16 support keys, as many channels would send them: each stays under
# the default rate limit, which the bench leaves on (its cost is in the figures).
BENCH_KEYS = [BENCH_KEY] + [f"sk_test_bench{i:02d}_" + "k" * 32 for i in range(1, 16)]
OFFER_KEYS = "bench-1:" + "b" * 40
WEBHOOK_SECRET = "whsec_bench"
CHUNK = 50_000
# What the seeded data set was built by: pages written before migration 0005 keep no room for
# in-place updates, so a data set seeded before it is seeded again.
DATA_SET = f"coverline bench data set 3 (fillfactor, migration 0005; contracts of {PLAN[0]} v{PLAN[1]})"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def disturbances() -> list[str]:
    """What else would be measured: other sessions on the bench database (a server left running
    holds connections, and PostgreSQL has only so many) and settings made for it alone."""
    admin = await asyncpg.connect(ADMIN_URL)
    others = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", DB
    )
    settings = await admin.fetch(
        "SELECT unnest(s.setconfig) AS setting FROM pg_db_role_setting s"
        " JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1",
        DB,
    )
    await admin.close()
    found = [f"{others} other connection(s) to {DB}: is a server still running?"] if others else []
    return found + [f"{DB} has its own setting {row['setting']}" for row in settings]


async def fresh_database(contracts: int) -> bool:
    """True when the data set must be seeded (the database is new and empty). A data set seeded
    by an older version of this script (see `DATA_SET`) is seeded again."""
    admin = await asyncpg.connect(ADMIN_URL)
    found = await admin.fetchrow(
        "SELECT shobj_description(oid, 'pg_database') AS data_set FROM pg_database WHERE datname = $1", DB
    )
    if found is not None:
        db = await asyncpg.connect(DB_URL)
        try:
            seeded = await db.fetchval("SELECT count(*) FROM contracts WHERE id LIKE 'ctr_b%'")
        except asyncpg.PostgresError:
            seeded = -1
        await db.close()
        if seeded == contracts and found["data_set"] == DATA_SET:
            log(f"reusing {seeded:,} contracts in {DB}")
            await admin.close()
            return False
        await admin.execute(f'DROP DATABASE "{DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB}"')
    await admin.close()
    return True


async def seed(contracts: int) -> None:
    db = await asyncpg.connect(DB_URL)
    now = dt.datetime.now(dt.UTC)
    plans, problems = decode_catalog((ROOT / "catalog" / "demo.toml").read_bytes())
    assert not problems
    await db.executemany(
        "INSERT INTO plans (code, version, active, digest, definition, published_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(p.code, p.version, p.active, p.digest(), encode_plan(p).decode(), now) for p in plans],
    )
    await db.execute(
        "INSERT INTO api_keys (id, kind, name, scopes, secret_hash, hint, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "key_bench",
        KeyKind.SECRET.value,
        "bench",
        Scope.SUPPORT.value,
        hash_key(BENCH_KEY),
        "sk_test_…bench",
        now,
    )
    encoder = msgspec.json.Encoder()
    sold = now - dt.timedelta(days=30)
    start = time.perf_counter()
    for offset in range(0, contracts, CHUNK):
        customers, products, rows, periods, claims = [], [], [], [], []
        for i in range(offset, min(offset + CHUNK, contracts)):
            cus, prd, ctr, serial = f"cus_b{i:09d}", f"prd_b{i:09d}", f"ctr_b{i:09d}", f"BN{i:08d}"
            period = Period(sold, sold + dt.timedelta(days=730))
            used = (ClaimUse("screen", sold + dt.timedelta(days=3), 12000),) if i % 10 == 0 else ()  # type: ignore[arg-type]
            snapshot = ProductSnapshot(
                prd,
                cus,
                "PHONE-X",
                "phone",
                Money(50000, "USD"),
                serial,
                None,
                "c***@example.com",
                (
                    ContractSnapshot(
                        ctr,
                        ContractStatus.ACTIVE,
                        *PLAN,
                        "USD",
                        sold,
                        sold,
                        None,
                        None,
                        None,
                        (period,),
                        used,
                    ),
                ),
            )
            customers.append((cus, f"Customer {i}", f"c{i}@example.com", "en", "US", sold, sold))
            products.append(
                (
                    prd,
                    cus,
                    serial,
                    "PHONE-X",
                    "phone",
                    50000,
                    "USD",
                    sold.date(),
                    12,
                    encoder.encode(snapshot).decode(),
                    sold,
                )
            )
            rows.append(
                (
                    ctr,
                    cus,
                    prd,
                    f"ofr_b{i:09d}",
                    *PLAN,
                    7900,
                    "USD",
                    "upfront",
                    "active",
                    sold,
                    sold,
                    0,
                    sold,
                    sold,
                )
            )
            periods.append((ctr, period.start, period.end, f"pay_b{i:09d}"))
            if used:
                claims.append(
                    (
                        f"clm_b{i:09d}",
                        f"ref_b{i:09d}",
                        ctr,
                        prd,
                        "screen",
                        (sold + dt.timedelta(days=3)).date(),
                        15000,
                        "USD",
                        12000,
                        2900,
                        "approved",
                        sold,
                    )
                )
        await db.copy_records_to_table(
            "customers",
            records=customers,
            columns=["id", "name", "email", "locale", "country", "created_at", "updated_at"],
        )
        await db.copy_records_to_table(
            "products",
            records=products,
            columns=[
                "id",
                "customer_id",
                "serial",
                "sku",
                "category",
                "price_amount",
                "currency",
                "purchase_date",
                "warranty_months",
                "entitlement",
                "created_at",
            ],
        )
        await db.copy_records_to_table(
            "contracts",
            records=rows,
            columns=[
                "id",
                "customer_id",
                "product_id",
                "offer_id",
                "plan_code",
                "plan_version",
                "price_amount",
                "currency",
                "billing",
                "status",
                "sold_at",
                "coverage_starts_at",
                "revision",
                "created_at",
                "updated_at",
            ],
        )
        await db.copy_records_to_table(
            "coverage_periods", records=periods, columns=["contract_id", "starts_at", "ends_at", "source_ref"]
        )
        if claims:
            await db.copy_records_to_table(
                "claims",
                records=claims,
                columns=[
                    "id",
                    "reference",
                    "contract_id",
                    "product_id",
                    "incident_kind",
                    "incident_date",
                    "amount",
                    "currency",
                    "covered_amount",
                    "deductible",
                    "status",
                    "created_at",
                ],
            )
        done = min(offset + CHUNK, contracts)
        log(f"seeded {done:,} contracts ({done / (time.perf_counter() - start):,.0f}/s)")
    await db.execute("VACUUM (ANALYZE)")  # as a live database would be: hint bits set, pages all-visible
    await db.execute(f"COMMENT ON DATABASE \"{DB}\" IS '{DATA_SET}'")
    await db.close()


async def bench_keys() -> None:
    """The support keys the checks are spread over (a data set seeded before them gets them)."""
    db = await asyncpg.connect(DB_URL)
    try:
        await db.executemany(
            "INSERT INTO api_keys (id, kind, name, scopes, secret_hash, hint, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (id) DO NOTHING",
            [
                (
                    f"key_bench{i:02d}" if i else "key_bench",
                    KeyKind.SECRET.value,
                    "bench",
                    Scope.SUPPORT.value,
                    hash_key(key),
                    "sk_test_…bench",
                )
                for i, key in enumerate(BENCH_KEYS)
            ],
        )
    finally:
        await db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workers: int, database_url: str = DB_URL) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "COVERLINE_ENV": "production",
        "DATABASE_URL": database_url,
        "COVERLINE_OFFER_KEYS": OFFER_KEYS,
        "COVERLINE_LOG_LEVEL": "WARNING",
        "COVERLINE_DB_CONNECTIONS": "40",  # x 2 workers, of PostgreSQL's 97 for clients
        "STRIPE_API_KEY": "sk_test_bench_unused",  # production settings; the bench takes no payment
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "COVERLINE_REPLAY_KEY": "bench-replay-key-" + "r" * 32,
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "coverline"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the socket listens before the workers have started
        try:
            httpx.get(base + "/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    time.sleep(1.0)
    return server, base


def rss_mb(server: subprocess.Popen[bytes]) -> list[float]:
    """The server's workers' RSS (its own when it runs the app in-process, with one worker)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,ppid=,rss=,args=", "-A"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(maxsplit=3) for line in out.splitlines()]
    workers = [
        int(rss) / 1024 for _, ppid, rss, args in rows if int(ppid) == server.pid and "spawn_main" in args
    ]
    return workers or [int(rss) / 1024 for pid, _, rss, _ in rows if int(pid) == server.pid]


LUA_KEYS = "keys = {" + ", ".join(f'"{key}"' for key in BENCH_KEYS) + "}\n"
LUA_SINGLE = (
    LUA_KEYS
    + """
math.randomseed(%(seed)d)
request = function()
  local headers = {["Authorization"] = "Bearer " .. keys[math.random(#keys)]}
  local path = string.format("/v1/entitlements?serial=BN%%08d", math.random(0, %(n)d - 1))
  return wrk.format("GET", path, headers)
end
"""
)

LUA_BATCH = (
    LUA_KEYS
    + """
math.randomseed(%(seed)d)
request = function()
  local parts = {}
  for i = 1, 100 do parts[i] = string.format('{"serial":"BN%%08d"}', math.random(0, %(n)d - 1)) end
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. keys[math.random(#keys)],
  }
  local body = '{"lookups":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/v1/entitlements/check", headers, body)
end
"""
)


def wrk(
    base: str, path: str, seconds: int, script: str | None = None, threads: int = 2, connections: int = 64
) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write((script or "") + LUA_DONE)
    cmd += ["-s", lua.name]
    out = subprocess.run([*cmd, base + path], capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    made = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    deepest = re.search(r"^p99\.9_us=([\d.]+)$", out, re.M)
    return {
        "rps": rps,
        "requests": made,
        "p50_ms": latency("50%"),
        "p99_ms": latency("99%"),
        "p999_ms": float(deepest.group(1)) / 1000 if deepest else float("nan"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


# wrk's own report stops at p99; its `done` hook gives the p99.9.
LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("p99.9_us=%d\\n", latency:percentile(99.9)))
end
"""


LUA_MIX = """
math.randomseed(%(seed)d)
local incidents = {"screen", "accidental_damage", "mechanical_breakdown", "battery", "liquid_damage"}
local locales = {"en", "fil", "hi", "sv", "ar", "vi"}
local now = os.time()
request = function()
  local r = math.random()
  local query
  if r < 0.10 then
    query = string.format("serial=ZZ%%08d", math.random(0, 99999999))  -- a miss
  elseif r < 0.20 then
    query = "customer_id=" .. customers[math.random(#customers)]
  elseif r < 0.30 then
    query = "contract_id=" .. contracts[math.random(#contracts)]
  else
    local serial = serials[math.random(#serials)]
    local typing = math.random()
    if typing < 0.3 then
      serial = string.lower(serial)
    elseif typing < 0.5 then
      serial = string.sub(serial, 1, 4) .. "-" .. string.sub(serial, 5)
    end
    query = "serial=" .. serial
  end
  if math.random() < 0.5 then query = query .. "&incident=" .. incidents[math.random(#incidents)] end
  if math.random() < 0.5 then query = query .. "&locale=" .. locales[math.random(#locales)] end
  if math.random() < 0.2 then
    query = query .. "&at=" .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", now - math.random(0, 365 * 86400))
  end
  local headers = {["Authorization"] = "Bearer " .. keys[math.random(#keys)]}
  return wrk.format("GET", "/v1/entitlements?" .. query, headers)
end
"""


def mix_script(sample: dict[str, list[str]], seed: int) -> str:
    """Checks as real callers mix them, drawn from the data set's own rows (`sample`): serials as
    typed (as stored, in lower case, with dashes), about 10% that miss, with and without
    `incident` and `locale`, an `at=` within the past year, and customer and contract lookups."""

    def table(name: str) -> str:
        return f"{name} = {{" + ", ".join(f'"{v}"' for v in sample[name]) + "}\n"

    return LUA_KEYS + table("serials") + table("customers") + table("contracts") + LUA_MIX % {"seed": seed}


async def data_set_sample(rows: int = 5_000) -> dict[str, list[str]]:
    """Serials, customers and contracts of the data set itself (not the seed's formula)."""
    db = await asyncpg.connect(DB_URL)
    try:
        found = await db.fetch(
            "SELECT p.serial, p.customer_id, c.id FROM products p TABLESAMPLE SYSTEM (2)"
            " JOIN contracts c ON c.product_id = p.id WHERE p.serial IS NOT NULL LIMIT $1",
            rows,
        )
    finally:
        await db.close()
    return {
        "serials": [r[0] for r in found],
        "customers": [r[1] for r in found],
        "contracts": [r[2] for r in found],
    }


LUA_WEBHOOKS = """
local events = {}
for line in io.lines("%(file)s") do
  local signature, body = line:match("^([^\t]+)\t(.*)$")
  events[#events + 1] = {signature, body}
end
local next_event = 0
request = function()
  next_event = next_event %% #events + 1
  local event = events[next_event]
  return wrk.format("POST", "/v1/stripe/webhooks",
    {["Content-Type"] = "application/json", ["Stripe-Signature"] = event[1]}, event[2])
end
"""


async def awaiting_payment(count: int, contracts: int, tag: str) -> list[str]:
    """`count` contracts awaiting their first payment, each the only one of a customer and a
    product of its own, copied from a seeded one (ids `…_p…`, serials `BP…`: the data set's own
    stay `…_b…` and `BN…`). Runs that added their contracts to the seeded products grew the
    snapshots, the customers and the products that the checks and the mix read, run after run."""
    db = await asyncpg.connect(DB_URL)
    try:
        async with db.transaction():
            await db.execute(
                "CREATE TEMP TABLE awaiting ON COMMIT DROP AS SELECT g, c.id AS contract_id,"
                " c.customer_id, c.product_id, $1 || '_' || g AS made"
                " FROM generate_series(1, $2) g"
                " JOIN contracts c ON c.id = 'ctr_b' || lpad((((g + $4)::bigint * 7919) % $3)::text, 9, '0')",
                tag,
                count,
                contracts,
                secrets.randbelow(contracts),
            )
            await db.execute(
                "INSERT INTO customers (id, name, email, phone, locale, country, created_at, updated_at,"
                " time_zone, marketing_consent)"
                " SELECT 'cus_p' || a.made, k.name, k.email, k.phone, k.locale, k.country, now(), now(),"
                " k.time_zone, k.marketing_consent FROM awaiting a JOIN customers k ON k.id = a.customer_id"
            )
            # The snapshot a unit of work rewrites when the first payment comes: no contract yet.
            await db.execute(
                "INSERT INTO products (id, customer_id, serial, sku, category, price_amount, currency,"
                " purchase_date, warranty_months, warranty_labour_months, entitlement, created_at)"
                " SELECT 'prd_p' || a.made, 'cus_p' || a.made, 'BP' || a.made, p.sku, p.category,"
                " p.price_amount, p.currency, p.purchase_date, p.warranty_months, p.warranty_labour_months,"
                " jsonb_set(jsonb_set(jsonb_set(jsonb_set(p.entitlement::jsonb,"
                " '{product_id}', to_jsonb('prd_p' || a.made)),"
                " '{customer_id}', to_jsonb('cus_p' || a.made)),"
                " '{serial}', to_jsonb('BP' || a.made)), '{contracts}', '[]')::text, now()"
                " FROM awaiting a JOIN products p ON p.id = a.product_id"
            )
            rows = await db.fetch(
                "INSERT INTO contracts (id, customer_id, product_id, offer_id, plan_code, plan_version,"
                " price_amount, currency, billing, status, sold_at, coverage_starts_at, revision, created_at,"
                " updated_at, disputed)"
                " SELECT 'ctr_p' || a.made, 'cus_p' || a.made, 'prd_p' || a.made, 'off_p' || a.made,"
                " c.plan_code, c.plan_version, c.price_amount, c.currency, c.billing, 'pending_payment',"
                " now(), now(), 0, now(), now(), false"
                " FROM awaiting a JOIN contracts c ON c.id = a.contract_id ORDER BY a.g RETURNING id"
            )
    finally:
        await db.close()
    return [row[0] for row in rows]


def webhook_ingestion(
    base: str, contracts: int, seconds: int, *, first: bool = True, events: int = 20_000
) -> dict[str, float]:
    """Signed `payment_intent.succeeded` events, posted by wrk (one thread, 16 connections) as
    Stripe would. `first`: each is the first payment of a contract awaiting it (made for the
    run, on a product of its own), which locks the contract, records its coverage period, books
    the sale, rewrites the product's snapshot and writes `contract.activated`, in one
    transaction; else each pays a seeded contract already paid, which books a duplicate payment
    and queues its refund."""
    from billing.webhooks.signatures import sign

    now = int(time.time())
    if first:
        paid = asyncio.run(awaiting_payment(events, contracts, str(now)))
    else:
        paid = [f"ctr_b{(i * 7919) % contracts:09d}" for i in range(events)]
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as out:
        for i, contract_id in enumerate(paid):
            body = msgspec.json.encode(
                {
                    "id": f"evt_bench_{now}_{i}",
                    "object": "event",
                    "type": "payment_intent.succeeded",
                    "created": now,
                    "data": {
                        "object": {
                            "id": f"pi_bench_{now}_{i}",
                            "object": "payment_intent",
                            "amount": 7900,
                            "currency": "usd",
                            "metadata": {"contract_id": contract_id},
                        }
                    },
                }
            )
            out.write(f"{sign(body, WEBHOOK_SECRET, now)}\t{body.decode()}\n")
    script = LUA_WEBHOOKS % {"file": out.name}
    result = wrk(base, "/", seconds, script, threads=1, connections=16)
    os.unlink(out.name)
    return result


async def server_settings() -> str:
    """The server settings that move these figures, as the bench found them."""
    db = await asyncpg.connect(DB_URL)
    try:
        names = ("synchronous_commit", "commit_delay", "shared_buffers", "max_connections", "server_version")
        return ", ".join([f"{name}={await db.fetchval(f'SHOW {name}')}" for name in names])
    finally:
        await db.close()


RUNS = 3  # every throughput figure is the median of this many runs (`--runs`)


def measured(server: subprocess.Popen[bytes], run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """`RUNS` throughput runs, each with the CPU its requests cost the server's workers and
    PostgreSQL; each figure the median of the runs'."""
    from bench.costs import Cpu

    runs = []
    for _ in range(RUNS):
        cpu = Cpu(server.pid)
        cpu.start()
        result = run()
        cpu.stop()
        served = max(result["requests"], 1)
        runs.append(
            {
                **result,
                "worker_cpu_ms": cpu.worker * 1000 / served,
                "postgres_cpu_ms": cpu.postgres * 1000 / served,
            }
        )
    return {name: statistics.median(r[name] for r in runs) for name in runs[0]}


def wire_costs(contracts: int, sample: dict[str, list[str]], seconds: int = 3) -> dict[str, dict[str, float]]:
    """Round trips and transactions per request, counted on the wire between one server worker
    and PostgreSQL at 8 connections (16 for webhooks), for each shape the throughput runs drive."""
    from bench.costs import WireCounter

    counter = WireCounter()
    server, base = start_server(1, f"postgresql://postgres@127.0.0.1:{counter.port}/{DB}")
    params = {"seed": 11, "n": contracts}
    shapes: dict[str, Callable[[], dict[str, float]]] = {
        "check by serial": lambda: wrk(base, "/", seconds, LUA_SINGLE % params, connections=8),
        "batch of 100": lambda: wrk(base, "/", seconds, LUA_BATCH % params, connections=8),
        "mix": lambda: wrk(base, "/", seconds, mix_script(sample, 11), connections=8),
        "webhooks": lambda: webhook_ingestion(base, contracts, seconds),
        "webhooks, duplicate payments": lambda: webhook_ingestion(base, contracts, seconds, first=False),
    }
    found: dict[str, dict[str, float]] = {}
    try:
        wrk(base, "/", 1, LUA_SINGLE % {**params, "seed": 12}, connections=8)  # warm: pools, plan cache
        for name, run in shapes.items():
            trips, committed = counter.round_trips, counter.commits
            result = run()
            served = max(result["requests"], 1)
            found[name] = {
                "round_trips": (counter.round_trips - trips) / served,
                "transactions": (counter.commits - committed) / served,
            }
    finally:
        stop(server)
    return found


RECON_START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # a range of its own in the bench database


async def reconciliation_bench(rows: int) -> dict[str, float]:
    """1,000,000 ledger rows against 1,000,000 balance transactions (1 in 1,000 off by a cent),
    streamed through `reconcile`, in a process of its own so its peak memory is its own."""
    import resource

    from billing.finance.reconcile import BalanceTransaction, ledger_of, reconcile

    db = await asyncpg.connect(DB_URL)
    have = await db.fetchval("SELECT count(*) FROM ledger_entries WHERE entry_key LIKE 'recon:%'")
    if have != rows:
        await db.execute("DELETE FROM ledger_entries WHERE entry_key LIKE 'recon:%'")
        for offset in range(0, rows, CHUNK):
            records = [
                (
                    f"recon:{i}",
                    "sale",
                    7900,
                    "USD",
                    f"ch_r{i}",
                    RECON_START + dt.timedelta(seconds=i),
                    RECON_START,
                )
                for i in range(offset, min(offset + CHUNK, rows))
            ]
            columns = [
                "entry_key",
                "kind",
                "amount",
                "currency",
                "stripe_charge",
                "occurred_at",
                "recorded_at",
            ]
            await db.copy_records_to_table("ledger_entries", records=records, columns=columns)
        log(f"seeded {rows:,} ledger rows for the reconciliation")
    await db.close()

    class Source:
        async def balance_transactions(self, since: dt.datetime, until: dt.datetime):  # type: ignore[no-untyped-def]
            for i in range(rows):
                amount = 7901 if i % 1000 == 0 else 7900
                yield BalanceTransaction(
                    f"txn_r{i}",
                    "charge",
                    amount,
                    259,
                    amount - 259,
                    "USD",
                    "available",
                    RECON_START + dt.timedelta(seconds=i),
                    (f"ch_r{i}",),
                )

    from entitlements.store.base import create_engine, session_factory

    engine = create_engine(DB_URL)
    start = time.perf_counter()
    until = RECON_START + dt.timedelta(seconds=rows)
    async with session_factory(engine)() as session, session.begin():
        ledger = await ledger_of(session, RECON_START, until)
    report = await reconcile(ledger, Source(), RECON_START, until)
    seconds = time.perf_counter() - start
    await engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": rows,
        "seconds": seconds,
        "peak_mb": peak,
        **{k: float(v) for k, v in report.counts.items()},
    }


def support_cost(rounds: int = 20_000) -> dict[str, float]:
    """µs per answer of one product under Laptop Care 36 (priority support by phone and chat in
    the help desk's hours, two services included), decided and viewed as a check does, with and
    without `opened_at`; the median of 3 runs each."""
    from api.routes.entitlements import _product_view
    from entitlements.decisions import decide_product

    plans = {(p.code, p.version): p for p in decode_catalog((ROOT / "catalog" / "demo.toml").read_bytes())[0]}
    laptop = max((key for key in plans if key[0] == "laptop-care-36"), key=lambda key: key[1])
    now = dt.datetime.now(dt.UTC)
    sold = now - dt.timedelta(days=30)
    contract = ContractSnapshot(
        "ctr_bench",
        ContractStatus.ACTIVE,
        *laptop,
        "USD",
        sold,
        sold,
        None,
        None,
        None,
        (Period(sold, sold + dt.timedelta(days=1095)),),
        (),
    )
    snapshot = ProductSnapshot(
        "prd_bench", "cus_bench", "LAPTOP-14", "laptop", Money(129900, "USD"), "LT1", None, None, (contract,)
    )

    def per_answer(opened_at: dt.datetime | None) -> float:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(rounds):
                _product_view(plans, decide_product(snapshot, plans, now, None), None, opened_at)
            runs.append((time.perf_counter() - start) / rounds * 1e6)
        return sorted(runs)[1]

    without, opened = per_answer(None), per_answer(now)
    return {"without_us": without, "opened_at_us": opened, "added_us": opened - without}


def main() -> None:
    global RUNS  # the one knob every measured part reads
    parser = argparse.ArgumentParser()
    parser.add_argument("--contracts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--parts",
        default="checks,mix,webhooks,cost,instances,events,reconciliation",
        help="what to measure, comma-separated (default: all but support)",
    )
    parser.add_argument("--events-backlog", type=int, default=20_000, help="deliveries drained at once")
    parser.add_argument("--events-rate", type=int, default=200, help="events/s offered for the latency")
    parser.add_argument(
        "--events-down-seconds",
        type=int,
        default=600,
        help="how long the receiver is down (the issue's 10 min)",
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="throughput runs per figure (the median)")
    parser.add_argument("--reconcile-only", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    RUNS = args.runs
    if args.reconcile_only:
        print(json.dumps(asyncio.run(reconciliation_bench(args.reconcile_only))))
        return
    if set(args.parts.split(",")) == {"support"}:
        cost = support_cost()
        print(
            f"opened_at on a check   +{cost['added_us']:.0f} µs per contract with support "
            f"({cost['without_us']:.0f} µs without, {cost['opened_at_us']:.0f} µs with; 4 due-by instants)"
        )
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (make bench installs it from Debian's packages)")
    t0 = time.perf_counter()
    fresh = asyncio.run(fresh_database(args.contracts))
    upgrade(DB_URL)  # a reused data set follows the schema too
    if fresh:
        asyncio.run(seed(args.contracts))
    asyncio.run(bench_keys())
    log(f"data set ready in {time.perf_counter() - t0:.0f} s")
    caveats = asyncio.run(disturbances())
    for caveat in caveats:
        log(f"WARNING: {caveat}; the figures measure it too")
    parts = set(args.parts.split(","))
    sample = asyncio.run(data_set_sample())
    results: dict[str, dict[str, float]] = {}
    rss: list[float] = []
    server, base = start_server(args.workers)
    try:
        params = {"seed": 42, "n": args.contracts}
        wrk(base, "/health", 3)  # warm-up: imports, pools, plan cache
        wrk(base, "/", 3, LUA_SINGLE % {**params, "seed": 7})  # other serials than those measured
        if "checks" in parts:
            results["bare /health"] = measured(server, lambda: wrk(base, "/health", args.seconds))
            results["check by serial"] = measured(
                server, lambda: wrk(base, "/", args.seconds, LUA_SINGLE % params)
            )
            results["batch of 100"] = measured(
                server, lambda: wrk(base, "/", args.seconds, LUA_BATCH % params)
            )
            rss = rss_mb(server)
        if "mix" in parts:
            if "bare /health" not in results:
                results["bare /health"] = measured(server, lambda: wrk(base, "/health", args.seconds))
            results["mix"] = measured(server, lambda: wrk(base, "/", args.seconds, mix_script(sample, 42)))
        if "webhooks" in parts:
            results["webhooks"] = measured(
                server, lambda: webhook_ingestion(base, args.contracts, args.seconds)
            )
            results["webhooks, duplicate payments"] = measured(
                server, lambda: webhook_ingestion(base, args.contracts, args.seconds, first=False)
            )
    finally:
        stop(server)
    if "cost" in parts:
        from bench.costs import database_only_batch, fsynced_commits

        log("cost model: round trips on the wire, and the database paths alone")
        wire = wire_costs(args.contracts, sample)
        alone = {
            "batch_lookups_per_s": asyncio.run(database_only_batch(DB_URL, sample["serials"])),
            "fsynced_commits_per_s": asyncio.run(fsynced_commits(DB_URL)),
        }
    if "instances" in parts:
        from bench.instances import two_instances

        log("two instances and two job workers on one database: writes through one, checks through the other")
        results["instances"] = two_instances(start_server, DB_URL, BENCH_KEY, sample)
    if "events" in parts:
        from bench.events import events_bench

        log("events: backlog, steady rate, receiver outage")
        results["events"] = asyncio.run(
            events_bench(
                DB_URL,
                backlog=args.events_backlog,
                rate=args.events_rate,
                seconds=args.seconds,
                down_seconds=args.events_down_seconds,
            )
        )
    print()
    for caveat in caveats:
        print(f"WARNING: {caveat}; these figures measure it too")
    if "checks" in parts or "mix" in parts:
        print(
            f"each figure the median of {RUNS} runs of {args.seconds} s at 64 connections, "
            f"{args.workers} workers;"
            " answers as served: summary, speech, coverages and claims of each contract"
        )
        print(f"{'':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'non-2xx':>9}")
        for name in ("bare /health", "check by serial", "batch of 100", "mix"):
            if name not in results:
                continue
            r = results[name]
            print(
                f"{name:<18}{r['rps']:>10,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['p999_ms']:>10.2f}"
                f"{r['errors']:>9}"
            )
    if "mix" in parts:
        mix = results["mix"]
        print()
        print(f"mix / bare             {mix['rps'] / results['bare /health']['rps']:.2f}   (goal >= 0.8)")
        print(f"mix p99                {mix['p99_ms']:.1f} ms (goal <= 12); p99.9 {mix['p999_ms']:.1f} ms")
    if "checks" in parts:
        bare, single, batch = (results[n] for n in ("bare /health", "check by serial", "batch of 100"))
        print()
        print(f"check / bare           {single['rps'] / bare['rps']:.2f}   (goal >= 0.8; must stay >= 0.6)")
        print(f"check p99              {single['p99_ms']:.1f} ms (must stay <= 25)")
        print(f"batch decisions/s      {batch['rps'] * 100:,.0f} (must stay >= 25,000)")
        print(f"worker RSS             {', '.join(f'{m:.0f} MB' for m in rss)} (target <= 300 each)")
        limits = "off" if os.environ.get("COVERLINE_RATE_LIMIT_PER_MINUTE") == "0" else "on, the defaults"
        print(f"rate limits            {limits}: checks spread over {len(BENCH_KEYS)} support keys")
    if "webhooks" in parts:
        for label, name in (
            ("first payments", "webhooks"),
            ("duplicate payments", "webhooks, duplicate payments"),
        ):
            ingestion = results[name]
            print(
                f"webhooks, {label:<19}{ingestion['rps']:,.0f} events/s, p50 {ingestion['p50_ms']:.0f} ms, "
                f"p99 {ingestion['p99_ms']:.0f} ms, {ingestion['worker_cpu_ms']:.2f} ms worker CPU each "
                f"({ingestion['errors']:.0f} non-2xx; goals >= 800/s, <= 1 ms; must stay >= 500/s)"
            )
    if "cost" in parts:
        print()
        print("cost model, per request (CPU over the runs above, 64 connections, 2 workers; round trips and")
        print("transactions counted on the wire, 1 worker at 8 connections, 16 for webhooks)")
        print(
            f"{'':<22}{'worker CPU ms':>14}{'PostgreSQL CPU ms':>19}{'round trips':>13}{'transactions':>14}"
        )
        for name in (
            "bare /health",
            "check by serial",
            "batch of 100",
            "mix",
            "webhooks",
            "webhooks, duplicate payments",
        ):
            if name not in results:
                continue
            r, w = results[name], wire.get(name, {"round_trips": 0.0, "transactions": 0.0})
            print(
                f"{name:<22}{r['worker_cpu_ms']:>14.3f}{r['postgres_cpu_ms']:>19.3f}"
                f"{w['round_trips']:>13.2f}{w['transactions']:>14.2f}"
            )
        print(
            f"database alone         batch statement {alone['batch_lookups_per_s']:,.0f} lookups/s "
            f"(100 serials per = ANY, 8 connections); "
            f"fsynced commits {alone['fsynced_commits_per_s']:,.0f}/s (8 connections)"
        )
        if "batch of 100" in results:
            ratio = results["batch of 100"]["rps"] * 100 / alone["batch_lookups_per_s"]
            print(f"batch / database alone {ratio:.2f}   (goal >= 0.7)")
        settings = asyncio.run(server_settings())
        print(f"PostgreSQL settings    {settings}")
    if "instances" in parts:
        two = results["instances"]
        print(
            f"two instances          {two['stale']:.0f} stale answers in {two['rounds']:.0f} transfers "
            f"through one instance checked at once through the other (read after write p50 "
            f"{two['read_after_write_p50_ms']:.1f} ms, p99 {two['read_after_write_p99_ms']:.1f} ms)"
        )
    if "events" in parts:
        from bench.events import report

        report(results["events"])
    if "reconciliation" in parts:
        recon_run = subprocess.run(
            [sys.executable, __file__, "--reconcile-only", "1000000"],
            capture_output=True,
            text=True,
            check=True,
        )
        recon = json.loads(recon_run.stdout.strip().splitlines()[-1])
        print(
            f"reconciliation         {recon['rows']:,.0f} ledger rows x as many balance transactions in "
            f"{recon['seconds']:.1f} s, peak {recon['peak_mb']:.0f} MB (goals <= 20 s, <= 300 MB); "
            f"{recon['matched']:,.0f} matched, {recon['amount_mismatch']:,.0f} amount mismatches"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(
            {"contracts": args.contracts, "workers": args.workers, "results": results, "rss_mb": rss},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
