"""Argument checks shared by every layer: a bad argument raises at construction, naming the
parameter, the value and the allowed range. Never a silent clamp."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def check_rate(name: str, value: float) -> float:
    """``value`` as a float in [0, 1], or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """``value`` as a finite float > 0, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_number(name: str, value: Any, *, low: float, inclusive: bool) -> float:
    """``value`` as a finite float above ``low`` (or at it, when ``inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    ok = value >= low if inclusive else value > low
    if not (math.isfinite(value) and ok):
        op = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a finite number {op} {low}, got {value!r}")
    return float(value)


def check_int(name: str, value: int, low: int = 1) -> int:
    """``value`` if it is an integer >= ``low`` (not a bool), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_score_fn(score_fn: Callable[[Any], float] | None) -> Callable[[Any], float] | None:
    """``score_fn`` if it is None or callable, else a TypeError."""
    if score_fn is not None and not callable(score_fn):
        raise TypeError(f"score_fn must be a callable taking the result, got {score_fn!r}")
    return score_fn


def check_exception_types(name: str, value: Any) -> tuple[type[BaseException], ...]:
    """An exception class or a tuple/list/set of them, as a tuple."""
    if isinstance(value, type):
        types: tuple[Any, ...] = (value,)
    elif isinstance(value, (tuple, list, set, frozenset)):
        types = tuple(value)
    else:
        raise TypeError(f"{name} must be an exception class or a tuple of them, got {value!r}")
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"{name} must be exception classes, got {t!r}")
    return types
