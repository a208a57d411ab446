"""Argument checks shared by every layer: a bad argument raises at construction, naming the
parameter, the value and the allowed range. Never a silent clamp.

Numbers are any real number (numpy scalars, fractions included) but never a bool; the checks
return plain ``float``/``int``. NaN and ±inf are refused wherever a finite number is meant."""

from __future__ import annotations

import math
import numbers
import reprlib
import unicodedata
from collections.abc import Callable
from typing import Any

_shortener = reprlib.Repr()
_shortener.maxstring = _shortener.maxother = 80
_shortener.maxlong = 40


def shown(value: Any) -> str:
    """``repr(value)`` for an error message, shortened: a 10**100000 or a megabyte string
    must not become a megabyte message (reprlib keeps the start and the end)."""
    try:
        return _shortener.repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(value).__name__} object>"


class ArgumentTypeError(TypeError, ValueError):
    """A wrong kind of argument where a number of a kind was asked for (a bool or a float
    for a count): both a TypeError and a ValueError, so either ``except`` catches it."""


def is_real(value: Any) -> bool:
    """A real number (numpy scalars and fractions included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_rate(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1], or a TypeError/ValueError naming ``name``."""
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be a number in [0, 1], got {shown(value)}")
    number = _as_float(name, value)
    if not (0.0 <= number <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {shown(value)}")
    return number


def check_exceedable_rate(name: str, value: float) -> float:
    """A rate in [0, 1) that a share can strictly exceed (no share exceeds 1)."""
    rate = check_rate(name, value)
    if rate >= 1.0:
        raise ValueError(
            f"{name} must be in [0, 1): a share can never exceed {shown(value)}, so the condition "
            "could never trip"
        )
    return rate


def check_positive(name: str, value: Any) -> float:
    """``value`` as a finite float > 0, or a TypeError/ValueError naming ``name``."""
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be a number > 0, got {shown(value)}")
    number = _as_float(name, value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {shown(value)}")
    return number


def check_number(name: str, value: Any, *, low: float, inclusive: bool) -> float:
    """``value`` as a finite float above ``low`` (or at it, when ``inclusive``)."""
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be a number, got {shown(value)}")
    number = _as_float(name, value)
    ok = number >= low if inclusive else number > low
    if not (math.isfinite(number) and ok):
        op = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a finite number {op} {low}, got {shown(value)}")
    return number


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``low`` (not a bool; numpy integers are
    fine), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer >= {low}, got {shown(value)}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {shown(value)}")
    return int(value)


def is_finite(value: float) -> bool:
    """``math.isfinite`` that answers False, not OverflowError, for an int beyond floats."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _as_float(name: str, value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int or Fraction beyond the float range
        raise ValueError(f"{name} must be a finite number, got {shown(value)}") from None


def check_finite(name: str, value: Any) -> float:
    """``value`` as a finite float (any sign), or a TypeError/ValueError naming ``name``."""
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be a number, got {shown(value)}")
    number = _as_float(name, value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {shown(value)}")
    return number


def check_score_fn(score_fn: Callable[[Any], float] | None) -> Callable[[Any], float] | None:
    """``score_fn`` if it is None or callable, else a TypeError."""
    if score_fn is not None and not callable(score_fn):
        raise TypeError(f"score_fn must be a callable taking the result, got {shown(score_fn)}")
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


MAX_NAME_LENGTH = 256
"""The longest breaker name: names become log fields, metric labels and Redis keys."""


def check_name(name: Any, what: str = "name") -> str:
    """A breaker name: a non-blank string of at most ``MAX_NAME_LENGTH`` printable characters
    (no NUL or other control characters, no lone surrogates: they cannot be logged, encoded
    for Redis or exported as a metric label)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {shown(name)}")
    if not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {shown(name)}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{what} must be at most {MAX_NAME_LENGTH} characters, got {len(name)}: {shown(name)}"
        )
    for ch in name:
        if not ch.isprintable() and unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise ValueError(
                f"{what} must not contain control characters or lone surrogates, got "
                f"{shown(name)} (character U+{ord(ch):04X})"
            )
    return name
