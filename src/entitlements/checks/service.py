"""Entitlement checks: which product snapshots a lookup names (the decision itself is
`entitlements.decisions`, on those snapshots)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from entitlements.errors import InvalidInput
from entitlements.identifiers import clean_text, normalize_imei, normalize_serial
from entitlements.store.snapshots import ProductSnapshot, SnapshotSource, decode_snapshot

# The ways to look products up, and their longest values.
LOOKUP_LIMITS = {"serial": 64, "imei": 32, "contract_id": 64, "customer_id": 64, "order_ref": 128}


class Lookup(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Exactly one way to find the products to check."""

    serial: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["serial"])] | None = None
    imei: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["imei"])] | None = None
    contract_id: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["contract_id"])] | None = None
    customer_id: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["customer_id"])] | None = None
    order_ref: Annotated[str, msgspec.Meta(max_length=LOOKUP_LIMITS["order_ref"])] | None = None

    def only(self) -> tuple[str, str]:
        given = [(k, v) for k in LOOKUP_LIMITS if (v := getattr(self, k))]
        if len(given) != 1:
            raise InvalidInput(
                "give exactly one of serial, imei, contract_id, customer_id, order_ref", field="lookup"
            )
        return given[0]


def _normalized(kind: str, value: str) -> str:
    if kind == "serial":
        return normalize_serial(value)
    if kind == "imei":
        return normalize_imei(value)
    if kind == "order_ref":
        return clean_text(value, "order_ref", LOOKUP_LIMITS["order_ref"])
    return value


MAX_ANSWER_PRODUCTS = 2_000


def _keyed(lookups: list[Lookup], listed_as: str | None) -> list[tuple[str, str]]:
    """Each lookup's kind and value as stored; a problem naming the lookup, as `lookups[3]`
    (`lookups[3].serial`) when they came as the list `listed_as`."""
    keyed = []
    for index, lookup in enumerate(lookups):
        try:
            kind, value = lookup.only()
            keyed.append((kind, _normalized(kind, value)))
        except InvalidInput as exc:
            if listed_as is None:
                raise
            field = f"{listed_as}[{index}]" + ("" if exc.field == "lookup" else f".{exc.field}")
            raise InvalidInput(exc.detail, field=field) from None
    return keyed


async def resolve(
    source: SnapshotSource, lookups: list[Lookup], listed_as: str | None = None
) -> list[list[ProductSnapshot]]:
    """The product snapshots each lookup names (an empty list: nothing found), in one read
    however many lookups, of whatever kinds. An answer holds at most `MAX_ANSWER_PRODUCTS`
    products (1,000 lookups of customers with many products each once came to 15.9 MB)."""
    keyed = _keyed(lookups, listed_as)
    raw: dict[tuple[str, str], list[str]] = {}
    for kind, key, snapshot in await source.fetch(keyed):
        raw.setdefault((kind, key), []).append(snapshot)
    if sum(len(raw.get(item, ())) for item in keyed) > MAX_ANSWER_PRODUCTS:
        raise InvalidInput(
            f"these lookups name more than {MAX_ANSWER_PRODUCTS} products: ask for fewer at a time",
            field="lookups",
        )
    found = {item: [decode_snapshot(s) for s in snapshots] for item, snapshots in raw.items()}
    return [found.get(item, []) for item in keyed]
