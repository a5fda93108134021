"""One word per concept and language, used alike by the catalog's plan texts and by the texts
Coverline writes itself (the summaries' gettext catalogs).

Each entry names the chosen term (its forms as they appear in sentences), the variants that are
refused, and why. Where the catalog's own texts name a concept, their word is chosen unless it
misleads. `tests/entitlements/test_glossary.py` requires the chosen terms and refuses the
rejected ones in every generated text.
"""

from __future__ import annotations

import msgspec


class Term(msgspec.Struct, frozen=True):
    chosen: tuple[str, ...]  # the forms the sentences use (case-insensitive)
    rejected: tuple[str, ...]
    why: str


# language → concept → term. Concepts: covered (the state), claim, deductible, plan, and the
# incident kinds whose words were in doubt.
GLOSSARY: dict[str, dict[str, Term]] = {
    "en": {
        "covered": Term(("covered",), ("insured",), "a service plan, not an insurance policy"),
        "claim": Term(("claim",), (), "the catalog's word"),
        "deductible": Term(("deductible",), ("excess", "co-pay"), "the catalog's word"),
        "plan": Term(("plan",), ("warranty",), "the manufacturer gives the warranty; we sell plans"),
        "manufacturer_warranty": Term(("manufacturer's warranty",), (), "the manufacturer's own"),
    },
    "fil": {
        "covered": Term(("saklaw",), ("sakop",), "the catalog's «Saklaw»; one word for one idea"),
        "claim": Term(("claim",), ("paghahabol",), "the catalog's loanword, as Filipino shoppers say it"),
        "deductible": Term(("deductible",), ("bawas",), "the catalog's loanword"),
        "plan": Term(("plano",), (), "the catalog's word"),
    },
    "hi": {
        "covered": Term(("कवर",), ("बीमित",), "the catalog's word; not insurance"),
        "claim": Term(("क्लेम",), ("दावा",), "the catalog's word, as customers say it"),
        "deductible": Term(
            ("डिडक्टिबल",), ("कटौती योग्य राशि",), "the catalog's word; the calque was read as a tax deduction"
        ),
        "plan": Term(("योजना",), ("प्लान",), "the catalog's word"),
    },
    "sv": {
        "covered": Term(("täckt", "täcks"), ("försäkrad",), "the catalog's word; not insurance"),
        "claim": Term(("skadeanmälan", "skadeanmälningar"), ("skadeärende",), "the catalog's word"),
        "deductible": Term(("självrisk",), (), "the catalog's word"),
        "plan": Term(("skydd",), ("serviceplan",), "the catalog names its plans «…skydd»"),
    },
    "ar": {
        "covered": Term(("التغطية",), ("مؤمن عليه",), "the catalog's word; not insurance"),
        "claim": Term(("المطالبات", "للمطالبات", "مطالبة"), (), "the catalog's word"),
        "deductible": Term(
            ("مبلغ التحمل", "مبلغ تحمل"), ("مبلغ تحمّل", "الخصم"), "the catalog's spelling, unvowelled"
        ),
        "plan": Term(("خطة", "الخطة"), ("الضمان",), "الضمان is the manufacturer's warranty"),
    },
    "vi": {
        "covered": Term(
            ("bảo vệ",), ("bảo hành",), "bảo hành is the manufacturer's warranty; the plan protects"
        ),
        "claim": Term(
            ("yêu cầu",), ("khiếu nại",), "the catalog's word (a request for repair), not a complaint"
        ),
        "deductible": Term(("mức khấu trừ",), (), "the catalog's word"),
        "plan": Term(("gói",), (), "the catalog's word"),
        "manufacturer_warranty": Term(
            ("bảo hành của nhà sản xuất",), (), "the one place bảo hành is right: the manufacturer's own"
        ),
        "power_surge": Term(("điện áp tăng đột ngột",), ("sốc điện",), "sốc điện is an electric shock"),
    },
}

# Which concept each summary sentence names: its translation must use the chosen term.
SENTENCE_CONCEPTS: dict[str, tuple[str, ...]] = {
    "covered": ("covered",),
    "incident_covered": ("covered", "deductible"),
    "incident_no_deductible": ("covered", "deductible"),
    "claims_left": ("claim",),
    "aggregate_left": ("plan",),
    "no_contract": ("covered",),
    "limit_reached": ("claim",),
    "amount_reached": ("covered",),
    "terms_coverages": ("covered",),
    "terms_deductible": ("deductible", "claim"),
    "terms_no_deductible": ("deductible",),
    "terms_claims_term": ("claim",),
    "terms_claims_rolling": ("claim",),
    "terms_claims_unlimited": ("claim",),
    "terms_free_look": ("claim",),
    "terms_renews": ("plan",),
    "terms_fixed": ("plan",),
}
