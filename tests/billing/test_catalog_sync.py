import asyncio

from billing.catalog_sync import price_specs, sync_catalog
from billing.sandbox import SandboxGateway
from entitlements.catalog import decode_catalog
from tests.conftest import DEMO_CATALOG

PLANS, _ = decode_catalog(DEMO_CATALOG.read_bytes())


def test_one_price_per_plan_version_currency_and_band() -> None:
    specs = price_specs(PLANS)
    assert len(specs) == sum(len(p.prices) for p in PLANS)
    assert len({s.lookup_key for s in specs}) == len(specs)
    monthly = next(s for s in specs if s.lookup_key.startswith("coverline.phone-care-monthly.v2.VND."))
    assert (monthly.interval_months, monthly.currency) == (1, "VND")
    upfront = next(s for s in specs if s.lookup_key.startswith("coverline.phone-protect-24.v1.PHP."))
    assert upfront.interval_months is None


def test_syncing_twice_creates_nothing_the_second_time() -> None:
    sandbox = SandboxGateway("whsec_x")
    first = asyncio.run(sync_catalog(sandbox, PLANS))
    second = asyncio.run(sync_catalog(sandbox, PLANS))
    assert len(first.created) == len(price_specs(PLANS))
    assert (second.created, sorted(second.found)) == ([], sorted(first.created))
