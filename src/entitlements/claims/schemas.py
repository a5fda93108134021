"""What the claims use cases take in: request bodies, decoded and bounded by msgspec."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from entitlements.catalog import CoverageKind
from entitlements.claims.rules import (
    Fulfilment,
    ReviewAction,
)
from entitlements.fields import DESCRIPTION_LENGTH, REF_LENGTH, Ref
from entitlements.money import Money

NOTE_LENGTH = 2000  # a reviewer's note


class ClaimInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A claim names its contract by `contract_id`, or its product by `serial` (the contract that
    covers the incident is chosen); `customer_id` alone names neither."""

    reference: Ref
    incident_kind: CoverageKind
    incident_date: dt.date
    amount: Money
    contract_id: Ref | None = None
    serial: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    customer_id: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=REF_LENGTH,
                description="A check, not a way to find the contract: when given, the contract must be"
                " this customer's",
            ),
        ]
        | None
    ) = None
    description: Annotated[str, msgspec.Meta(max_length=DESCRIPTION_LENGTH)] | None = None
    # The IMEI read off the device at intake: checked as a fraud signal, never refused for it.
    device_imei: Annotated[str, msgspec.Meta(pattern=r"^[0-9 -]{1,32}$")] | None = None


class FulfilInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How an approved claim is made good: `repair` (optionally assigned to `servicer_id`),
    `replace` (`sku`, and its `cost`), `reimburse` (what the plan pays, owed to the customer) or
    `gift_card` (its `code`, worth what the plan pays)."""

    method: Fulfilment
    servicer_id: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    cost: Money | None = None
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class ReviewInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: ReviewAction
    reason_code: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    note: Annotated[str, msgspec.Meta(max_length=NOTE_LENGTH)] | None = None
