"""The classic API's errors name the classic API's own parameters, not the engine's."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from tripwise import CircuitBreaker as Engine
from tripwise.compat import classic


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"recovery_timeout": math.nan}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"half_open_max_calls": True}, "half_open_max_calls"),
        ({"failure_rate_threshold": 1.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": -0.5}, "failure_rate_threshold"),
        ({"failure_threshold": 0}, "failure_threshold"),
    ],
)
def test_classic_errors_name_classic_parameters(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        classic.CircuitBreaker(registry=None, **kwargs)
    assert named in str(info.value)
    assert "half_open_after" not in str(info.value) and "recovery_threshold" not in str(info.value)


def test_force_open_is_logged_as_forced_not_as_a_trip(caplog: pytest.LogCaptureFixture) -> None:
    breaker = Engine(name="manual", registry=None)
    with caplog.at_level(logging.WARNING, logger="tripwise"):
        breaker.force_open()
    assert "'manual' forced open" in caplog.text
    assert "trip #" not in caplog.text
