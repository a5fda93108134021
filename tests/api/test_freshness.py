"""Two app instances on one PostgreSQL: a change committed through one is what the other answers
next. (Checks read the snapshot row that the change rewrote in its own transaction.)"""

import datetime as dt

from api.app import create_app
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys, make_settings, serving


async def test_the_other_instance_sees_every_change_at_once(database_url: str, keys: Keys) -> None:
    writer_app = create_app(make_settings(database_url))
    reader_app = create_app(make_settings(database_url))
    async with serving(writer_app) as writer, serving(reader_app) as reader:
        await publish_test_plans(writer_app)
        shop = Shop(writer, keys)
        desk = Shop(reader, keys)
        contract = await shop.sell()
        serial = contract["serial"]

        async def reader_says() -> tuple[bool, str | None, int | None]:
            answer = await desk.check(serial=serial, incident="screen")
            entries = [c for p in answer["products"] for c in p["contracts"]]
            return answer["covered"], answer["reason"], entries[0]["remaining_claims"] if entries else None

        assert await reader_says() == (True, None, 2)
        await shop.claim(contract_id=contract["id"])
        assert await reader_says() == (True, None, 1)
        await shop.claim(contract_id=contract["id"])
        assert await reader_says() == (False, "limit_reached", 0)

        buyer = await shop.customer(email="new.owner@example.com")
        await shop.call(
            "POST", f"/v1/contracts/{contract['id']}/transfer", "support", json={"customer_id": buyer["id"]}
        )
        moved = await desk.check(customer_id=buyer["id"])
        assert moved["products"][0]["contact"] == "n***@example.com"

        await shop.lifecycle(contract["id"], "cancel", "cancel-now")
        assert (await reader_says())[:2] == (False, "cancelled")

        monthly = await shop.sell("test-monthly")
        end = dt.datetime.fromisoformat(monthly["coverage_periods"][0]["end"])
        await shop.lifecycle(monthly["id"], "past_due", "inv-failed", at=end)
        await shop.lifecycle(monthly["id"], "lapse", "sub-deleted", at=end + dt.timedelta(days=14))
        later = (end + dt.timedelta(days=15)).isoformat()
        lapsed = await desk.check(contract_id=monthly["id"], at=later)
        assert (lapsed["covered"], lapsed["reason"]) == (False, "lapsed")
