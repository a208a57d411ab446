"""Argument checks shared by every layer: a bad argument raises at construction, naming the
parameter, the value and the allowed range. Never a silent clamp.

Numbers are any real number (numpy scalars, fractions included) but never a bool; the checks
return plain ``float``/``int``. NaN and ±inf are refused wherever a finite number is meant."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any


def is_real(value: Any) -> bool:
    """A real number (numpy scalars and fractions included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_rate(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1], or a TypeError/ValueError naming ``name``."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    number = float(value)
    if not (0.0 <= number <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return number


def check_exceedable_rate(name: str, value: float) -> float:
    """A rate in [0, 1) that a share can strictly exceed (no share exceeds 1)."""
    rate = check_rate(name, value)
    if rate >= 1.0:
        raise ValueError(
            f"{name} must be in [0, 1): a share can never exceed {value!r}, so the condition "
            "could never trip"
        )
    return rate


def check_positive(name: str, value: Any) -> float:
    """``value`` as a finite float > 0, or a TypeError/ValueError naming ``name``."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number > 0, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_number(name: str, value: Any, *, low: float, inclusive: bool) -> float:
    """``value`` as a finite float above ``low`` (or at it, when ``inclusive``)."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    ok = number >= low if inclusive else number > low
    if not (math.isfinite(number) and ok):
        op = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a finite number {op} {low}, got {value!r}")
    return number


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``low`` (not a bool; numpy integers are
    fine), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


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
