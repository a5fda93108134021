"""What the customers use cases take in: request bodies, decoded and bounded by msgspec."""

from __future__ import annotations

from typing import Annotated

import msgspec

from entitlements.catalog import CountryCode
from entitlements.fields import Ref, Text200


class CustomerInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Text200
    country: CountryCode
    external_ref: Ref | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    locale: Annotated[str, msgspec.Meta(max_length=35)] = "en"
    # IANA; may be left out where the country keeps one clock (PH, IN, SE, SA, VN, …).
    time_zone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    marketing_consent: bool = False  # letters with offers (a lead); service letters go regardless


class CustomerPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Text200 | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    locale: Annotated[str, msgspec.Meta(max_length=35)] | None = None
    country: CountryCode | None = None
    time_zone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    marketing_consent: bool | None = None
