"""An error page in the visitor's language: its heading by the problem's status, and the problem's
own words only where they are in that language."""

from __future__ import annotations

import pytest

from api.pages.common import error_texts, words


@pytest.mark.parametrize("locale", ["fil", "hi", "sv", "ar", "vi"])
@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 429, 500])
def test_an_error_page_never_shows_english_to_a_visitor_of_another_language(locale: str, status: int) -> None:
    english_title, english_words = error_texts(status, "amount: must be a number", "en")
    title, said = error_texts(status, "amount: must be a number", locale)
    assert title != english_title and said != english_words  # each one translated
    assert "amount" not in said  # the problem's English detail is not shown
    refusal = words(locale)["portal_link_refused"]
    assert error_texts(status, refusal, locale)[1] == (refusal if status < 500 else said)


def test_an_english_error_page_says_what_went_wrong_but_never_a_servers_detail() -> None:
    assert error_texts(422, "amount: must be a number", "en") == (
        "Please check what you sent",
        "amount: must be a number",
    )
    assert error_texts(500, "KeyError: 'x'", "en") == (
        "Something went wrong on our side",
        "Please try again in a few minutes.",
    )
