"""The corpus of bad inputs: for every operation of the committed OpenAPI document, queries,
paths, keys and (where it takes one) bodies that a careless client or an attacker sends; and
signatures for Stripe's webhook. Each must get a 4xx problem from the production server and
write nothing. Made from the document, so a new operation gets its cases without a line here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "/v1/stripe/webhooks"


class Case(msgspec.Struct, frozen=True):
    name: str
    method: str
    path: str  # with its query, escaped as sent
    headers: dict[str, str] = {}
    body: bytes | None = None
    key: bool = True  # sent with a good key (else: only the case's own headers)


def _operations() -> list[tuple[str, str, dict[str, object]]]:
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete") and path not in ("/health", "/ready")
    ]


def _concrete(path: str, value: str = "zz_none_such") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _query_names(operation: dict[str, object]) -> list[str]:
    parameters = operation.get("parameters", [])
    assert isinstance(parameters, list)
    return [p["name"] for p in parameters if p.get("in") == "query"]


BODIES: list[tuple[str, bytes]] = [
    ("not JSON", b"{"),
    ("a list", b"[]"),
    ("null", b"null"),
    ("a bare number", b"1"),
    ("nested 2,000 deep", b"[" * 2000 + b"]" * 2000),
    ("an escaped NUL", b'{"name": "a\\u0000b", "reference": "r\\u0000", "reason": "x\\u0000"}'),
    ("a number past 64 bits", b'{"amount": {"amount": 123456789012345678901234567890, "currency": "USD"}}'),
    ("a number as a string", b'{"amount": {"amount": "100", "currency": "USD"}, "price": {"amount": "1"}}'),
    ("an unknown field", b'{"zz_unknown": true}'),
    ("invalid UTF-8", b'{"name": "\xff\xfe"}'),
]
SIGNATURES: list[tuple[str, str | None]] = [
    ("no signature", None),
    ("empty", ""),
    ("garbage", "garbage"),
    ("no v1", "t=1700000000"),
    ("non-ASCII v1", "t=1700000000,v1=é" + "0" * 63),
    ("a forged v1", "t=1700000000,v1=" + "0" * 64),
    ("a timestamp that is no number", "t=soon,v1=" + "0" * 64),
    ("a timestamp from year 9999", "t=253402300800,v1=" + "0" * 64),
    ("a negative timestamp", "t=-1,v1=" + "0" * 64),
    ("only separators", ",,,=,="),
]


def corpus() -> list[Case]:
    cases: list[Case] = []
    for method, path, operation in _operations():
        here = _concrete(path)
        label = f"{method} {path}"
        cases.append(Case(f"{label}: an unknown query parameter", method, here + "?zz_unknown=1"))
        cases.append(Case(f"{label}: a NUL in the query", method, here + "?zz=%00"))
        if names := _query_names(operation):
            cases.append(Case(f"{label}: {names[0]} twice", method, f"{here}?{names[0]}=a&{names[0]}=b"))
        if "{" in path:
            cases.append(Case(f"{label}: a NUL in the path", method, _concrete(path, "a%00b")))
            cases.append(Case(f"{label}: a 300-character id", method, _concrete(path, "x" * 300)))
        if (
            path != WEBHOOK
            and not path.startswith("/v1/unsubscribe/")
            and not path.startswith("/v1/evidence-uploads/")
        ):
            for name, value in (
                ("no key", None),
                ("a scheme alone", "Bearer"),
                ("a Basic credential", "Basic dXNlcjpwYXNz"),
                ("a key of the wrong shape", "Bearer sk_test_short"),
                ("an unknown key", "Bearer sk_test_" + "A" * 43),
            ):
                headers = {"Authorization": value} if value is not None else {}
                cases.append(Case(f"{label}: {name}", method, here, headers, key=False))
        if method in ("POST", "PUT", "PATCH") and path != WEBHOOK:
            json_type = {"Content-Type": "application/json"}
            for name, body in BODIES:
                cases.append(Case(f"{label}: {name}", method, here, json_type, body))
            cases.append(Case(f"{label}: as text/plain", method, here, {"Content-Type": "text/plain"}, b"{}"))
            cases.append(
                Case(
                    f"{label}: an Idempotency-Key of 300 characters",
                    method,
                    here,
                    json_type | {"Idempotency-Key": "k" * 300},
                    b"{}",
                )
            )
    for name, signature in SIGNATURES:
        headers = {"Content-Type": "application/json"} | (
            {"Stripe-Signature": signature} if signature is not None else {}
        )
        cases.append(
            Case(
                f"webhook: {name}",
                "POST",
                WEBHOOK,
                headers,
                b'{"id": "evt_1", "type": "charge.refunded"}',
                key=False,
            )
        )
    return cases
