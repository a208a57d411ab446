"""The conditions of tripwise.quality work on [0, 1] scores: another score_range is refused at
construction with an error that says how to map the scores (not a silent clamp to 0)."""

from __future__ import annotations

from typing import Any

import pytest

from tripwise import quality_below
from tripwise.quality import (
    low_quality_share_above,
    quality_drift,
    quality_mean_below,
)


@pytest.mark.parametrize(
    "build",
    [
        lambda r: quality_drift(score_range=r),
        lambda r: quality_mean_below(0.5, score_range=r),
        lambda r: low_quality_share_above(0.1, 0.5, score_range=r),
    ],
)
def test_another_score_range_is_refused_with_a_mapping(build: Any) -> None:
    with pytest.raises(ValueError, match=r"math\.exp\(logprob\)"):
        build((-50.0, 0.0))
    assert build((0, 1)) is not None  # the unit range itself is fine
    with pytest.raises(TypeError, match="score_range"):
        build("wide")


def test_core_quality_rules_take_any_range() -> None:
    assert quality_below(-3.0, score_range=(-50.0, 0.0)).score_range == (-50.0, 0.0)
