"""The satisfaction report's pure rule, property-tested: every answer counted once, in its
month, plan and servicer, with the average of its ratings."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from entitlements.satisfaction.rules import Answer, monthly

answers = st.lists(
    st.builds(
        Answer,
        st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31), timezones=st.just(dt.UTC)),
        st.sampled_from(["laptop-care-36", "appliance-care-annual"]),
        st.sampled_from([None, "srv_a", "srv_b"]),
        st.integers(1, 5),
    ),
    max_size=40,
)


@given(answers)
def test_each_answer_is_counted_once_in_its_month_plan_and_servicer(given_answers: list[Answer]) -> None:
    lines = monthly(given_answers)
    assert sum(line.answers for line in lines) == len(given_answers)
    assert len({(x.month, x.plan_code, x.servicer_id) for x in lines}) == len(lines)
    for line in lines:
        mine = [
            a.rating
            for a in given_answers
            if (a.answered_at.date().replace(day=1), a.plan_code, a.servicer_id)
            == (line.month, line.plan_code, line.servicer_id)
        ]
        assert line.ratings == [mine.count(r) for r in range(1, 6)]
        assert line.average == round(sum(mine) / len(mine), 2)
