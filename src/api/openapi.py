"""The OpenAPI document, rendered the same way for the committed file and its drift test."""

from __future__ import annotations

import json

import msgspec

from api.settings import Settings
from entitlements.offers.rules import OfferKeyring


def render_openapi() -> str:
    from api.app import create_app

    # The document does not depend on settings; give the factory throwaway secrets.
    app = create_app(
        Settings(
            offer_keys=OfferKeyring((("doc", b"x" * 32),)),
            stripe_webhook_secrets=("doc",),
            replay_key="doc" * 11,
        )
    )
    schema = msgspec.to_builtins(app.openapi_schema.to_schema())
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
