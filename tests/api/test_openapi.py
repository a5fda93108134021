from pathlib import Path

from api.openapi import render_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_the_committed_openapi_document_matches_the_app() -> None:
    assert COMMITTED.read_text() == render_openapi(), "run `make openapi` and commit openapi/openapi.json"


def test_the_document_is_openapi_3_1_with_security_and_examples() -> None:
    import json

    document = json.loads(render_openapi())
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    offers = document["paths"]["/v1/offers"]["post"]
    assert offers["requestBody"]["content"]["application/json"]["schema"]["examples"]
    assert "application/problem+json" in offers["responses"]["422"]["content"]
    assert document["paths"]["/health"]["get"]["security"] == [{}]
