"""Server settings refuse values a comparison with 0 lets through (NaN, infinity)."""

from __future__ import annotations

import math

import pytest

from tripwise.server.settings import Settings


@pytest.mark.parametrize(
    "field", ["tick_interval_s", "keepalive_s", "rate_limit_per_s", "ingest_rate_limit_per_s"]
)
@pytest.mark.parametrize("value", [math.nan, math.inf, 0.0, -1.0])
def test_rates_and_intervals_must_be_finite_and_positive(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a finite number > 0"):
        Settings(**{field: value}).validated()


def test_nan_shutdown_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="shutdown_grace_s must be >= 0"):
        Settings(shutdown_grace_s=math.nan).validated()


def test_ordinary_values_are_kept() -> None:
    settings = Settings(tick_interval_s=0.5, keepalive_s=15.0).validated()
    assert (settings.tick_interval_s, settings.keepalive_s) == (0.5, 15.0)
