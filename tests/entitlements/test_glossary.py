"""The glossary holds in every text Coverline writes itself, and the gettext catalogs are whole,
current and enough: a seventh language is one more catalog and no code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from entitlements.catalog import LOCALES, CoverageKind
from entitlements.glossary import GLOSSARY, SENTENCE_CONCEPTS
from entitlements.summary_texts import (
    BENEFITS,
    CHANNELS,
    DURATIONS,
    EMAILS,
    INCIDENTS,
    PAGES,
    SENTENCES,
    SPEECH_SENTENCES,
    SUPPORT_LEVELS,
    TERMS,
)
from entitlements.translations import LOCALE_DIR, catalogs, translate

PLACEHOLDER = re.compile(r"\{[a-z]+\}")
QUOTED_PLAN = {"hi": "“{plan}” योजना", "ar": "خطة «{plan}»", "vi": "gói “{plan}”"}


def sources() -> set[tuple[str, str]]:
    return (
        {
            (key, text)
            for key, text in (SENTENCES | SPEECH_SENTENCES | TERMS | DURATIONS | EMAILS | PAGES).items()
        }
        | {("incident", text) for text in INCIDENTS.values()}
        | {("benefit", text) for text in BENEFITS.values()}
        | {("support_level_name", text) for text in SUPPORT_LEVELS.values()}
        | {("channel", text) for text in CHANNELS.values()}
    )


def test_the_six_languages_are_the_catalogs() -> None:
    assert set(LOCALES) == {"en", "fil", "hi", "sv", "ar", "vi"}
    assert LOCALES[0] == "en"


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en"])
def test_every_message_is_translated_with_the_same_placeholders(locale: str) -> None:
    messages = catalogs()[locale]
    for context, source in sources():
        translated = messages.get((context, source))
        assert translated, f"{locale}: no translation of {context}: {source}"
        if context.endswith((":one", ":two")):  # "يومان", "شهر واحد": one and two may be words
            assert set(PLACEHOLDER.findall(translated)) <= set(PLACEHOLDER.findall(source))
            continue
        assert sorted(PLACEHOLDER.findall(translated)) == sorted(PLACEHOLDER.findall(source)), (
            locale,
            context,
        )


def test_the_template_is_current() -> None:
    """`make messages` was run after the last change to the source messages."""
    with (LOCALE_DIR / "coverline.pot").open("rb") as pot:
        extracted = {(m.context, str(m.id)) for m in read_po(pot) if m.id}
    assert extracted == sources()


@pytest.mark.parametrize("locale", LOCALES)
def test_the_chosen_terms_are_used_and_the_rejected_ones_never(locale: str) -> None:
    glossary = GLOSSARY[locale]
    texts = {
        key: translate(locale, key, source) for key, source in (SENTENCES | TERMS | EMAILS | PAGES).items()
    }
    texts |= {
        f"incident:{kind.value}": translate(locale, "incident", INCIDENTS[kind]) for kind in CoverageKind
    }
    for key, text in texts.items():
        words = PLACEHOLDER.sub(" ", text).lower()
        # A chosen term of one concept may hold a word rejected for another (vi: the
        # manufacturer's "bảo hành" is right; the plan's "bảo hành" is not).
        unchosen = words
        for term in glossary.values():
            for form in term.chosen:
                unchosen = unchosen.replace(form.lower(), " ")
        for term in glossary.values():
            for rejected in term.rejected:
                assert rejected.lower() not in unchosen, (
                    f"{locale} {key}: {rejected!r} (choose {term.chosen[0]!r}: {term.why})"
                )
        for concept in SENTENCE_CONCEPTS.get(key, ()):
            chosen = glossary[concept].chosen
            assert any(form.lower() in words for form in chosen), (
                f"{locale} {key}: says {concept} without {chosen}"
            )
    if "power_surge" in glossary:
        surge = texts["incident:power_surge"].lower()
        assert any(form in surge for form in glossary["power_surge"].chosen)


@pytest.mark.parametrize("locale", sorted(QUOTED_PLAN))
def test_a_plan_name_is_quoted_after_the_word_for_plan(locale: str) -> None:
    """A name such as "Laptop Care 3 years" never reads as part of the sentence."""
    for key, source in (SENTENCES | EMAILS).items():
        if "{plan}" in source:
            text = translate(locale, key, source)
            assert QUOTED_PLAN[locale].lower() in text.lower(), (
                locale,
                key,
                text,
            )  # a sentence may begin with it


def test_a_seventh_language_is_one_catalog_and_no_code(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALE_DIR, locales, ignore=shutil.ignore_patterns("*.mo"))
    german = Catalog(locale="de", domain="coverline")
    german.add(SENTENCES["cancelled"], "Nicht gedeckt: {plan} wurde gekündigt.", context="cancelled")
    (locales / "de" / "LC_MESSAGES").mkdir(parents=True)
    with (locales / "de" / "LC_MESSAGES" / "coverline.po").open("wb") as po:
        write_po(po, german)
    script = """
import datetime as dt
from entitlements.catalog import LOCALES
from entitlements.coverage import ContractStatus, Decision, Reason
from entitlements.localization import negotiate_locale
from entitlements.summaries import summarize
at = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
decision = Decision(False, Reason.CANCELLED, "ctr_1", ContractStatus.CANCELLED, at)
print(",".join(LOCALES))
print(negotiate_locale(None, "de-CH, en;q=0.5"))
print(summarize(decision, "de", plan_name="Handyschutz"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "COVERLINE_LOCALE_DIR": str(locales)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    languages, negotiated, cancelled = done.stdout.splitlines()
    assert "de" in languages.split(",")
    assert negotiated == "de"
    assert cancelled == "Nicht gedeckt: Handyschutz wurde gekündigt."
