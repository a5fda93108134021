"""A server worker (`production_app`) freezes its start-up heap once start-up is complete."""

import gc

from api.app import create_app
from entitlements.catalog import LOCALES
from entitlements.localization import format_day
from tests.conftest import make_settings, serving


async def test_a_long_lived_app_starts_with_its_heap_frozen_and_every_locale_read(database_url: str) -> None:
    gc.unfreeze()
    format_day.cache_clear()
    try:
        async with serving(create_app(make_settings(database_url), long_lived=True)) as http:
            assert gc.get_freeze_count() > 0
            assert format_day.cache_info().currsize == len(LOCALES)  # read before the freeze
            assert (await http.get("/health")).status_code == 200
    finally:
        gc.unfreeze()


async def test_an_ordinary_app_leaves_the_collector_alone(database_url: str) -> None:
    gc.unfreeze()
    async with serving(create_app(make_settings(database_url))) as http:
        assert (await http.get("/health")).status_code == 200
        assert gc.get_freeze_count() == 0
