"""Serials, IMEIs, emails and names as people type them, in any script."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.errors import InvalidInput
from entitlements.identifiers import clean_text, normalize_email, normalize_imei, normalize_serial

# Each script's digits 0-9 (ASCII, full-width, Arabic-Indic, Extended Arabic-Indic, Devanagari).
DIGITS = {
    "ascii": "0123456789",
    "full-width": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "persian": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
}
DASHES = "-‐‑‒–—―−－"  # hyphen-minus, hyphen, non-breaking hyphen, figure, en, em, bar, minus, full-width
INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u00ad"]  # zero-width space, word joiner, BOM, soft hyphen

serials = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=3, max_size=20)


def typed(serial: str, digits: str, dash: str, invisible: str, lower: bool) -> str:
    """The serial as someone might type it: other digits, a dash in the middle, an invisible
    character at the end, lower case, full-width letters when the digits are full-width."""
    out = []
    for char in serial:
        if char.isdigit():
            out.append(digits[int(char)])
        elif digits == DIGITS["full-width"]:
            out.append(chr(ord(char) + 0xFEE0))
        else:
            out.append(char.lower() if lower else char)
    middle = len(out) // 2
    return "".join(out[:middle]) + dash + "".join(out[middle:]) + invisible


@given(
    serial=serials,
    digits=st.sampled_from(list(DIGITS.values())),
    dash=st.sampled_from(DASHES),
    invisible=st.sampled_from(["", *INVISIBLE]),
    lower=st.booleans(),
)
def test_a_serial_is_found_however_it_is_typed(
    serial: str, digits: str, dash: str, invisible: str, lower: bool
) -> None:
    assert normalize_serial(typed(serial, digits, dash, invisible, lower)) == serial


@pytest.mark.parametrize("bad", ["АВС123", "AB", "A\u200b" * 2, "A" * 41, "ⅩⅩⅩ123!"])
def test_what_is_not_a_serial_is_refused(bad: str) -> None:
    """Cyrillic lookalikes stay Cyrillic; a serial is ASCII letters and digits once normalized."""
    with pytest.raises(InvalidInput):
        normalize_serial(bad)


def test_an_imei_typed_in_arabic_indic_digits_is_the_same_imei() -> None:
    assert normalize_imei("٤٩٠١٥٤٢٠٣٢٣٧٥١٨") == normalize_imei("490154203237518")


@given(st.text(min_size=1, max_size=30))
def test_clean_text_is_nfc_and_stable(raw: str) -> None:
    try:
        once = clean_text(raw, "name", 200)
    except InvalidInput:
        return
    assert unicodedata.is_normalized("NFC", once)
    assert clean_text(once, "name", 200) == once
    assert once == once.strip() and once


def test_a_name_decomposed_or_composed_is_one_name() -> None:
    assert (
        clean_text("Jose\u0301 Rizal", "name", 200) == clean_text("José Rizal", "name", 200) == "José Rizal"
    )


@pytest.mark.parametrize("spoof", ["Ana\u202eTNEMYAP", "\u2066Ana\u2069", "Ana\u200fB", "A\u0007na"])
def test_direction_marks_and_control_characters_are_refused_in_names(spoof: str) -> None:
    with pytest.raises(InvalidInput):
        clean_text(spoof, "name", 200)


@pytest.mark.parametrize("blank", ["   ", "\u200b", "\t\n", "\ufeff \u2060"])
def test_a_blank_name_is_refused(blank: str) -> None:
    with pytest.raises(InvalidInput, match="blank"):
        clean_text(blank, "name", 200)


@pytest.mark.parametrize("blank", ["\u0301\u0301", " \u0301 ", "\u20dd"])
def test_marks_with_nothing_to_mark_are_a_blank_name(blank: str) -> None:
    """Combining accents alone show nothing: they were taken for a name."""
    with pytest.raises(InvalidInput, match="blank"):
        clean_text(blank, "name", 200)


@pytest.mark.parametrize(
    "hidden", ["A\U000e0041B", "A\uffffB", "A\ufdd0B", "A\ue000B", "A\ud800B", "A\u2062B"]
)
def test_invisible_private_and_noncharacters_are_refused_in_names(hidden: str) -> None:
    """A tag character outside a flag, a noncharacter, a private-use one, a lone surrogate, an
    invisible operator: each stored a name that shows other than it holds."""
    with pytest.raises(InvalidInput, match="invisible"):
        clean_text(hidden, "name", 200)


@given(st.text(min_size=1, max_size=30))
def test_a_kept_name_shows_something_and_holds_no_hidden_characters(raw: str) -> None:
    try:
        kept = clean_text(raw, "name", 200)
    except InvalidInput:
        return
    shown_formats = set("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u08e2\u180e\u200c\u200d")
    for char in kept:
        category = unicodedata.category(char)
        assert category not in {"Co", "Cs", "Cc", "Zl", "Zp"}, repr(char)
        assert category != "Cf" or char in shown_formats, repr(char)
        assert category != "Cn" or 0x1F000 <= ord(char) <= 0x1FBFF, repr(char)
        assert not (0xFDD0 <= ord(char) <= 0xFDEF or ord(char) & 0xFFFE == 0xFFFE), repr(char)
    assert any(unicodedata.category(char)[0] in "LNPS" or unicodedata.category(char) == "Cn" for char in kept)


TAGS = {letter: chr(0xE0000 + ord(letter)) for letter in "abcdefghijklmnopqrstuvwxyz0123456789 "}


def tagged(text: str) -> str:
    return "\U0001f3f4" + "".join(TAGS[c] for c in text) + "\U000e007f"


@pytest.mark.parametrize(
    "kept",
    [
        "Thanks \U0001fa77",  # an emoji newer than this Python's Unicode: unassigned to it
        "\U0001fa77",
        "\U0001fae8 broke",
        f"Go {tagged('gbsct')}!",  # Scotland's flag
        "\u2764\ufe0f \U0001f44d\U0001f3fd",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: emoji joined by ZWJ
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # the rainbow flag
        "Nguyễn Thị Minh Khai",
        "ज्ञान",
        "\u0600\u0661\u0662",  # the Arabic number sign, which shows
    ],
)
def test_emoji_flags_and_names_in_every_script_are_kept(kept: str) -> None:
    assert clean_text(kept, "comment", 200) == kept


@pytest.mark.parametrize(
    "hidden", [f"Ok {tagged('ignore all previous')}", "A\u2065B", "A\ufff0B", "A\u0378B", "a\u2028b"]
)
def test_text_hidden_in_a_false_flag_or_unassigned_characters_is_refused(hidden: str) -> None:
    with pytest.raises(InvalidInput, match="invisible"):
        clean_text(hidden, "comment", 200)


@pytest.mark.parametrize("filler", ["\u3164", "\u2800", "\uffa0 \u115f"])
def test_fillers_that_show_nothing_are_a_blank_name(filler: str) -> None:
    with pytest.raises(InvalidInput, match="blank"):
        clean_text(filler, "name", 200)


def test_a_pasted_soft_hyphen_is_dropped_not_refused() -> None:
    assert clean_text("Versicherungs\u00adschein", "name", 200) == "Versicherungsschein"


def test_a_name_holding_what_replaced_bytes_that_were_not_utf8_is_refused() -> None:
    """A console sign-in posted `agent=%FF%FE`: the agent "\ufffd\ufffd" then signed every action."""
    with pytest.raises(InvalidInput, match="UTF-8"):
        clean_text("\ufffd\ufffd", "agent", 200)


def test_joiners_that_scripts_spell_with_are_kept() -> None:
    hindi = "क्\u200dष"  # a zero-width joiner inside a Devanagari conjunct
    persian = "می\u200cخواهم"  # a non-joiner inside an Arabic-script word
    assert clean_text(hindi, "name", 200) == hindi
    assert clean_text(persian, "name", 200) == persian


@pytest.mark.parametrize("joined", ["Ana\u200d", "\u200cAna", "A\u200dب", "Ana \u200c Bob", "क\u200d1"])
def test_a_joiner_outside_a_word_of_one_script_is_refused(joined: str) -> None:
    with pytest.raises(InvalidInput, match="joiner"):
        clean_text(joined, "name", 200)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_what_is_kept_holds_joiners_only_inside_words(raw: str) -> None:
    try:
        kept = clean_text(raw, "name", 200)
    except InvalidInput:
        return
    for index, char in enumerate(kept):
        if char in "\u200c\u200d":
            assert 0 < index < len(kept) - 1
            assert unicodedata.category(kept[index - 1])[0] in "LM"
            assert unicodedata.category(kept[index + 1])[0] in "LM"


def test_an_email_stored_decomposed_is_found_composed() -> None:
    assert normalize_email("Jose\u0301@Example.com") == normalize_email("josé@example.com")


def test_there_are_249_iso_countries_and_the_regions_are_not_among_them() -> None:
    from entitlements.identifiers import iso_countries

    assert len(iso_countries()) == 249
    assert {"PH", "IN", "SE", "SA", "VN", "US"} <= iso_countries()
    assert not {"EU", "UN", "XK", "ZZ", "AC"} & iso_countries()


def test_text_that_grows_when_normalized_is_measured_after() -> None:
    raw = "\u0958" * 150  # each is two characters in NFC
    with pytest.raises(InvalidInput, match="over 200"):
        clean_text(raw, "name", 200)
