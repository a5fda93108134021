"""docs/texts is what `coverline catalog texts catalog/demo.toml` writes: every changed sentence
reaches review as a diff of those files."""

from __future__ import annotations

from pathlib import Path

from entitlements.catalog import LOCALES, decode_catalog
from entitlements.corpus import corpus
from tests.conftest import DEMO_CATALOG, ROOT

TEXTS = ROOT / "docs" / "texts"


def test_the_reviewed_corpus_is_current() -> None:
    plans, problems = decode_catalog(DEMO_CATALOG.read_bytes())
    assert not problems
    pages = corpus(plans)
    assert set(pages) == {f"{kind}/{locale}.md" for kind in ("summaries", "terms") for locale in LOCALES}
    stale = [name for name, content in pages.items() if _read(TEXTS / name) != content]
    assert not stale, f"run `make texts` and review the diff of: {', '.join(sorted(stale))}"
    on_disk = {str(p.relative_to(TEXTS)) for p in TEXTS.rglob("*.md")}
    assert on_disk == set(pages), "a file under docs/texts that no language writes any more"


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None
