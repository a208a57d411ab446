"""Argument checks shared by the policies (each error names the parameter and the value)."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def check_callable(name: str, value: T | None, what: str = "a callable") -> T | None:
    """``value`` if it is None or callable, else a TypeError naming ``name``."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False (not 0/1, not a string), else a TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_rng(value: Any) -> Any:
    if value is not None and not callable(getattr(value, "random", None)):
        raise TypeError(f"rng must be a random.Random-like object, got {value!r}")
    return value
