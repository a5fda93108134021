"""What the use cases' inputs share: the lengths the columns hold, and how a new row's id is made."""

from __future__ import annotations

import secrets
from typing import Annotated

import msgspec

NAME_LENGTH, REF_LENGTH, DESCRIPTION_LENGTH = 200, 128, 2000  # as the columns hold them
Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_LENGTH)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=REF_LENGTH)]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"
