import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import (
    Billing,
    Coverage,
    CoverageKind,
    Eligibility,
    Ineligibility,
    Plan,
    PlanText,
    PriceBand,
    ProductCategory,
    ProductFacts,
    assess,
    check_plan,
    decode_catalog,
    select_price,
)
from entitlements.money import Money
from entitlements.zones import country_days

TODAY = dt.date(2026, 11, 23)
# The earliest and the latest day it is where the product was bought: today, by every clock.
TODAY_ANYWHERE = (TODAY, TODAY)


def plan(**overrides: object) -> Plan:
    values: dict[str, object] = {
        "code": "phone-protect-24",
        "version": 1,
        "texts": {"en": PlanText("Phone Protect", "Covers breakdowns", "Terms")},
        "coverages": [Coverage(CoverageKind.MECHANICAL_BREAKDOWN)],
        "term_months": 24,
        "billing": Billing.UPFRONT,
        "eligibility": Eligibility([ProductCategory.PHONE], max_days_since_purchase=60),
        "prices": [
            PriceBand("USD", 0, 7900, 50000),
            PriceBand("USD", 50000, 12900, 150000),
            PriceBand("VND", 0, 1_500_000),
        ],
        "waiting_period_days": 30,
    }
    values.update(overrides)
    return Plan(**values)  # type: ignore[arg-type]


def phone(price: Money, purchase_date: dt.date = TODAY, country: str = "PH") -> ProductFacts:
    return ProductFacts(ProductCategory.PHONE, price, purchase_date, country)


# --- price bands ------------------------------------------------------------------------------

# Contiguous, non-overlapping bands: boundaries b0 < b1 < … ; the last may be unbounded.
band_edges = st.lists(st.integers(0, 10**9), min_size=2, max_size=6, unique=True).map(sorted)


@st.composite
def bands_and_price(draw: st.DrawFn) -> tuple[list[PriceBand], Money]:
    edges = draw(band_edges)
    open_ended = draw(st.booleans())
    bands = [
        PriceBand(
            "USD", lo, draw(st.integers(1, 10**7)), None if (open_ended and i == len(edges) - 2) else hi
        )
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]
    return bands, Money(draw(st.integers(0, 2 * 10**9)), "USD")


@given(bands_and_price())
def test_a_product_price_falls_in_at_most_one_band(case: tuple[list[PriceBand], Money]) -> None:
    bands, price = case
    assert sum(band.contains(price) for band in bands) <= 1


@given(bands_and_price())
def test_the_selected_price_is_the_band_that_contains_the_product(
    case: tuple[list[PriceBand], Money],
) -> None:
    bands, price = case
    chosen = select_price(bands, price)
    containing = [
        b
        for b in bands
        if b.product_price_min <= price.amount
        and (b.product_price_max is None or price.amount < b.product_price_max)
    ]
    if containing:
        assert chosen == Money(containing[0].price, "USD")
    else:
        assert chosen is None


@given(bands_and_price())
def test_bands_never_match_another_currency(case: tuple[list[PriceBand], Money]) -> None:
    bands, price = case
    assert select_price(bands, Money(price.amount, "PHP")) is None


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 10**6), st.integers(1, 10**6))
def test_overlapping_bands_are_reported(a_min: int, b_min: int, a_len: int, b_len: int) -> None:
    a = PriceBand("USD", a_min, 100, a_min + a_len)
    b = PriceBand("USD", b_min, 200, b_min + b_len)
    overlap = a_min < b_min + b_len and b_min < a_min + a_len
    problems = check_plan(plan(prices=[a, b]))
    assert any("overlaps" in p.message for p in problems) == overlap


def test_band_edges_belong_to_the_upper_band() -> None:
    p = plan()
    assert p.price_for(Money(49999, "USD")) == Money(7900, "USD")
    assert p.price_for(Money(50000, "USD")) == Money(12900, "USD")
    assert p.price_for(Money(150000, "USD")) is None
    assert p.price_for(Money(99_000_000, "VND")) == Money(1_500_000, "VND")


# --- eligibility --------------------------------------------------------------------------------


def test_same_day_sale_has_no_waiting_period_and_a_later_one_does() -> None:
    assert assess(plan(), phone(Money(30000, "USD")), TODAY_ANYWHERE).waiting_period_days == 0
    later = assess(plan(), phone(Money(30000, "USD"), TODAY - dt.timedelta(days=10)), TODAY_ANYWHERE)
    assert later.eligible and later.waiting_period_days == 30


def test_a_sale_dated_by_utcs_clock_or_the_countrys_is_the_same_checkouts() -> None:
    """At 00:10 in Manila it is still yesterday in UTC: a purchase dated either day was made at
    this checkout (no waiting period), one dated the day after is in the future, and one dated
    the day before yesterday waits."""
    at = dt.datetime(2026, 11, 28, 16, 10, tzinfo=dt.UTC)
    days = country_days(at, "PH")
    assert days == (dt.date(2026, 11, 28), dt.date(2026, 11, 29))
    for dated in days:
        result = assess(plan(), phone(Money(30000, "USD"), dated), days)
        assert result.eligible and result.waiting_period_days == 0, dated
    future = assess(plan(), phone(Money(30000, "USD"), dt.date(2026, 11, 30)), days)
    assert future.reason is Ineligibility.PURCHASE_IN_FUTURE
    earlier = assess(plan(), phone(Money(30000, "USD"), dt.date(2026, 11, 27)), days)
    assert earlier.eligible and earlier.waiting_period_days == 30


@pytest.mark.parametrize(
    ("facts", "overrides", "reason"),
    [
        (
            ProductFacts(ProductCategory.TV, Money(30000, "USD"), TODAY, "PH"),
            {},
            Ineligibility.CATEGORY_NOT_COVERED,
        ),
        (
            phone(Money(30000, "USD"), country="SE"),
            {"eligibility": Eligibility([ProductCategory.PHONE], ["PH"])},
            Ineligibility.COUNTRY_NOT_SERVED,
        ),
        (phone(Money(30000, "USD"), TODAY - dt.timedelta(days=61)), {}, Ineligibility.PURCHASE_TOO_OLD),
        (phone(Money(30000, "USD"), TODAY + dt.timedelta(days=1)), {}, Ineligibility.PURCHASE_IN_FUTURE),
        (phone(Money(30000, "SEK")), {}, Ineligibility.CURRENCY_NOT_OFFERED),
        (phone(Money(500000, "USD")), {}, Ineligibility.PRICE_OUT_OF_BAND),
        (phone(Money(30000, "USD")), {"active": False}, Ineligibility.PLAN_INACTIVE),
    ],
)
def test_ineligible_products_get_a_reason(
    facts: ProductFacts, overrides: dict[str, object], reason: Ineligibility
) -> None:
    result = assess(plan(**overrides), facts, TODAY_ANYWHERE)
    assert result.reason is reason
    assert result.price is None


@given(st.integers(0, 200), st.integers(0, 2 * 10**5))
def test_eligible_means_priced_and_within_the_purchase_window(days_ago: int, amount: int) -> None:
    result = assess(plan(), phone(Money(amount, "USD"), TODAY - dt.timedelta(days=days_ago)), TODAY_ANYWHERE)
    if result.eligible:
        assert result.price is not None
        assert result.price.currency == "USD"
    assert result.eligible == (days_ago <= 60 and amount < 150000)


# --- the catalog file --------------------------------------------------------------------------

VALID = b"""
[[plans]]
code = "phone-protect-24"
version = 1
term_months = 24
billing = "upfront"
[plans.texts.en]
name = "Phone Protect"
summary = "s"
terms = "t"
[[plans.coverages]]
kind = "screen"
deductibles = { USD = 2900 }
[plans.eligibility]
categories = ["phone"]
[[plans.prices]]
currency = "USD"
product_price_min = 0
price = 7900
"""


def test_a_valid_catalog_decodes() -> None:
    plans, problems = decode_catalog(VALID)
    assert problems == []
    assert plans[0].coverage("screen") is not None
    assert plans[0].coverage("screen").deductible("USD") == Money(2900, "USD")  # type: ignore[union-attr]


def test_every_problem_is_reported_with_its_path() -> None:
    broken = (
        VALID.replace(b'billing = "upfront"', b'billing = "weekly"')
        + VALID.replace(b'kind = "screen"', b'kind = "screen"\n[[plans.coverages]]\nkind = "screen"')
        .replace(b'currency = "USD"', b'currency = "ABC"')
        .replace(b"version = 1", b"version = 2")
        + b"\n[plans.texts.xx]\nname='n'\nsummary='s'\nterms='t'\n"
    )
    _, problems = decode_catalog(broken)
    paths = {p.path for p in problems}
    assert "$.plans[0].billing" in paths
    assert "$.plans[1].coverages" in paths
    assert "$.plans[1].prices[0].currency" in paths
    assert "$.plans[1].texts.xx" in paths


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        ((b"version = 1", b"version = 2147483648"), "$.plans[0].version"),
        ((b"price = 7900", b"price = 9223372036854775808"), "$.plans[0].prices[0].price"),
        (
            (b"product_price_min = 0", b"product_price_min = 100000000000000000000"),
            "$.plans[0].prices[0].product_price_min",
        ),
        ((b"USD = 2900", b"USD = 9223372036854775808"), "$.plans[0].coverages[0].deductibles[...]"),
        (
            (b'billing = "upfront"', b'billing = "upfront"\nclaim_limits = { count = 1001 }'),
            "$.plans[0].claim_limits.count",
        ),
        (
            (b'categories = ["phone"]', b'categories = ["phone"]\nmax_days_since_purchase = 800000'),
            "$.plans[0].eligibility.max_days_since_purchase",
        ),
        (
            (b'billing = "upfront"', b'billing = "upfront"\ncancellation = { free_look_days = 3000000 }'),
            "$.plans[0].cancellation.free_look_days",
        ),
    ],
)
def test_a_number_past_what_is_stored_or_counted_is_refused_with_its_path(
    edit: tuple[bytes, bytes], path: str
) -> None:
    """A version PostgreSQL's integer cannot hold, an amount its bigint cannot, a free look that
    would end after the year 9999: refused when the catalog is read, not when a plan is sold."""
    _, problems = decode_catalog(VALID.replace(*edit))
    assert [p.path for p in problems] == [path]


def test_a_catalog_without_english_or_with_duplicates_is_refused() -> None:
    _, problems = decode_catalog(VALID.replace(b"[plans.texts.en]", b"[plans.texts.sv]"))
    assert [p.path for p in problems] == ["$.plans[0].texts"]
    _, problems = decode_catalog(VALID + VALID)
    assert any("appears twice" in p.message for p in problems)
    _, problems = decode_catalog(b"not = [toml")
    assert problems[0].path == "$"


def test_texts_fall_back_to_english() -> None:
    p = plan(texts={"en": PlanText("E", "e", "e"), "sv": PlanText("S", "s", "s")})
    assert p.text("sv").name == "S"
    assert p.text("vi").name == "E"


def test_the_digest_changes_with_any_edit() -> None:
    assert plan().digest() == plan().digest()
    assert plan().digest() != plan(term_months=36).digest()


def test_the_demo_catalogs_own_words_state_no_rule() -> None:
    """Every rule (grace, deductibles and fees, claim limits, waiting period, refunds, renewal)
    is a clause rendered from the plan's fields (`entitlements.terms`), never the free text, so
    the two cannot disagree: the free text holds no number but a condition of cover (a battery
    under 80 %). A plan that charges a fee for every visit names it as each coverage's
    deductible, so a check does not answer "no deductible"."""
    import re
    from pathlib import Path

    from entitlements.catalog import decode_catalog

    demo, problems = decode_catalog((Path(__file__).parents[2] / "catalog" / "demo.toml").read_bytes())
    assert problems == []
    for demo_plan in demo:
        for locale, text in demo_plan.texts.items():
            numbers = set(re.findall(r"\d+", text.terms.translate(DIGITS)))
            assert numbers <= {"80"}, (demo_plan.code, locale, numbers)
    appliance = next(p for p in demo if p.code == "appliance-care-annual")
    assert all(c.deductibles for c in appliance.coverages)


# Devanagari and Arabic-Indic digits read as ASCII.
DIGITS = str.maketrans("०१२३४५६७८९٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


@pytest.mark.parametrize("text", ["Phone \\u0000Care", "\\u202eeraC enohP", "Phone\\u0007Care"])
def test_a_text_with_control_characters_or_direction_overrides_is_a_problem(text: str) -> None:
    """A NUL in a plan's name made its SSML unreadable and its letters unsendable; an override
    makes one name read as another."""
    _, problems = decode_catalog(VALID.replace(b'name = "', f'name = "{text}'.encode(), 1))
    [problem] = problems
    assert (problem.path, "no control characters" in problem.message) == ("$.plans[0].texts.en.name", True)


def test_right_to_left_marks_stay_in_a_text() -> None:
    marked = VALID.replace(b'name = "', 'name = "\u200f\u2067'.encode(), 1)
    assert decode_catalog(marked)[1] == []
