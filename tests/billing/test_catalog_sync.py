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
    versions = {p.code: p.version for p in PLANS}
    monthly_key = f"coverline.phone-care-monthly.v{versions['phone-care-monthly']}.VND."
    monthly = next(s for s in specs if s.lookup_key.startswith(monthly_key))
    assert (monthly.interval_months, monthly.currency) == (1, "VND")
    upfront_key = f"coverline.phone-protect-24.v{versions['phone-protect-24']}.PHP."
    upfront = next(s for s in specs if s.lookup_key.startswith(upfront_key))
    assert upfront.interval_months is None


def test_syncing_twice_creates_nothing_the_second_time() -> None:
    sandbox = SandboxGateway("whsec_x")
    first = asyncio.run(sync_catalog(sandbox, PLANS))
    second = asyncio.run(sync_catalog(sandbox, PLANS))
    assert len(first.created) == len(price_specs(PLANS))
    assert (second.created, sorted(second.found)) == ([], sorted(first.created))
