"""Every built-in condition, alone and composed, agrees with its brute-force reference on every
call of random histories (ml-breaker protocol path: ``condition(record) -> bool``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tripwise

from ._reference import Rec, ref_all_of, ref_any_of
from ._strategies import KINDS, histories, rules

SETTINGS = settings(max_examples=60, deadline=None)


def _run(condition: tripwise.Condition, history: list[Rec]) -> list[bool]:
    return [condition(rec.record()) for rec in history]


def _expected(ref, history: list[Rec]) -> list[bool]:
    return [ref(history[: i + 1]) for i in range(len(history))]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("allow_time", [True, False], ids=["any-window", "count-window"])
def test_condition_matches_reference(kind: str, allow_time: bool) -> None:
    @settings(max_examples=30, deadline=None)
    @given(rule=rules(allow_time=allow_time, kinds=(kind,)), history=histories())
    def check(rule, history) -> None:
        assert _run(rule.build(), history) == _expected(rule.reference(), history), rule

    check()


@SETTINGS
@given(
    parts=st.lists(rules(), min_size=1, max_size=3),
    history=histories(),
    use_operator=st.booleans(),
)
def test_any_of_matches_reference(parts, history, use_operator) -> None:
    built = [p.build() for p in parts]
    if use_operator and len(built) > 1:
        cond = built[0]
        for b in built[1:]:
            cond = cond | b
    else:
        cond = tripwise.any_of(*built)
    ref = ref_any_of(*(p.reference() for p in parts))
    assert _run(cond, history) == _expected(ref, history), parts


@SETTINGS
@given(
    parts=st.lists(rules(), min_size=1, max_size=3),
    history=histories(),
    use_operator=st.booleans(),
)
def test_all_of_matches_reference(parts, history, use_operator) -> None:
    built = [p.build() for p in parts]
    if use_operator and len(built) > 1:
        cond = built[0]
        for b in built[1:]:
            cond = cond & b
    else:
        cond = tripwise.all_of(*built)
    ref = ref_all_of(*(p.reference() for p in parts))
    assert _run(cond, history) == _expected(ref, history), parts


@SETTINGS
@given(rule=rules(), before=histories(max_size=20), after=histories(max_size=20))
def test_reset_forgets_everything(rule, before, after) -> None:
    """After ``reset()`` a condition behaves exactly like a new one (ml-breaker protocol)."""
    used = rule.build()
    _run(used, before)
    used.reset()
    fresh = rule.build()
    shift = before[-1].t  # later timestamps than anything seen before the reset
    later = [Rec(r.error, r.latency_ms, r.quality, r.t + shift) for r in after]
    assert _run(used, later) == _run(fresh, later), rule


@SETTINGS
@given(
    parts=st.lists(rules(allow_time=False), min_size=2, max_size=3),
    before=histories(max_size=20),
    after=histories(max_size=20),
)
def test_composite_reset_forgets_everything(parts, before, after) -> None:
    """``any_of(...).reset()`` (ml-breaker protocol) leaves every child like new."""
    used = tripwise.any_of(*(p.build() for p in parts))
    _run(used, before)
    used.reset()
    fresh = tripwise.any_of(*(p.build() for p in parts))
    assert _run(used, after) == _run(fresh, after), parts
