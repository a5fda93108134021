"""Satisfaction's pure rules: what a rating is, and the monthly report per plan and servicer."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from enum import StrEnum

import msgspec

RATINGS = range(1, 6)  # 1 (very poor) to 5 (excellent)
COMMENT_LENGTH = 2000


class Subject(StrEnum):
    """What the customer is asked about."""

    SERVICE_ORDER = "service_order"  # a repair or a visit, closed
    REDEMPTION = "redemption"  # an included service that needed no visit (a session, a setup)


class Answer(msgspec.Struct, frozen=True):
    answered_at: dt.datetime
    plan_code: str
    servicer_id: str | None
    rating: int


class MonthLine(msgspec.Struct, frozen=True):
    """The answers of one calendar month (UTC) about one plan and one servicer (None: services
    given with no servicer, such as a support session)."""

    month: dt.date  # its first day
    plan_code: str
    servicer_id: str | None
    answers: int
    average: float  # of the ratings, to two decimals
    ratings: list[int]  # how many of each, from 1 to 5


def monthly(answers: Iterable[Answer]) -> list[MonthLine]:
    """Answers grouped by month, plan and servicer, in that order."""
    counts: dict[tuple[dt.date, str, str], list[int]] = defaultdict(lambda: [0] * len(RATINGS))
    for answer in answers:
        month = answer.answered_at.astimezone(dt.UTC).date().replace(day=1)
        counts[(month, answer.plan_code, answer.servicer_id or "")][answer.rating - 1] += 1
    lines = []
    for (month, plan, servicer), ratings in sorted(counts.items()):
        total = sum(ratings)
        average = sum(r * n for r, n in zip(RATINGS, ratings, strict=True)) / total
        lines.append(MonthLine(month, plan, servicer or None, total, round(average, 2), ratings))
    return lines
