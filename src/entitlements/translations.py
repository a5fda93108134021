"""The gettext catalogs: one `locales/<lang>/LC_MESSAGES/coverline.po` per language, read with
Babel. English is the source language (the messages themselves). A language is supported when
its catalog is there: adding a seventh means adding one catalog, and no code.

`COVERLINE_LOCALE_DIR` points at another directory of catalogs (a translator trying theirs)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from babel.messages.pofile import read_po

DOMAIN = "coverline"
SOURCE_LOCALE = "en"
LOCALE_DIR = Path(os.environ.get("COVERLINE_LOCALE_DIR") or Path(__file__).parent / "locales")

Messages = dict[tuple[str | None, str], str]


@functools.cache
def catalogs() -> dict[str, Messages]:
    """Each language's translated messages by (context, message); untranslated and fuzzy ones
    are left out, so they fall back to English rather than to an unchecked guess."""
    found: dict[str, Messages] = {}
    for path in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with path.open("rb") as source:
            catalog = read_po(source)
        found[path.parent.parent.name] = {
            (message.context, str(message.id)): str(message.string)
            for message in catalog
            if message.id and message.string and not message.fuzzy
        }
    return found


def languages() -> tuple[str, ...]:
    """English first, then every language with a catalog."""
    return (SOURCE_LOCALE, *(lang for lang in catalogs() if lang != SOURCE_LOCALE))


def translate(locale: str, context: str, message: str) -> str:
    return catalogs().get(locale, {}).get((context, message)) or message
