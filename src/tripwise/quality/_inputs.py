"""Turning whatever a model returned into plain Python floats, with clear errors.

Scorers accept Python sequences, NumPy arrays and torch tensors. Torch is never imported: a
tensor is recognised by its ``detach``/``cpu`` methods and converted with ``.tolist()``, which
NumPy arrays share, so NumPy stays optional too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def _plain(x: Any) -> Any:
    """Strip array containers down to nested Python lists (torch, NumPy, array-likes)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return x.tolist()
    return x


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_finite(values: list[float], what: str, allow_neg_inf: bool = False) -> None:
    for v in values:
        if not math.isfinite(v) and not (allow_neg_inf and v == -math.inf):
            raise ValueError(
                f"{what} contains a non-finite value ({v!r}); scores need real numbers"
            )


def to_vector(
    x: Any, what: str, *, finite: bool = True, allow_neg_inf: bool = False
) -> list[float]:
    """A non-empty 1-D sequence of numbers as a list of floats (ValueError/TypeError if not)."""
    x = _plain(x)
    if _is_number(x) or isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        raise TypeError(f"{what} must be a 1-D sequence of numbers, got {type(x).__name__}")
    out: list[float] = []
    for v in x:
        v = _plain(v)
        if not _is_number(v):
            raise TypeError(
                f"{what} must be a 1-D sequence of numbers, found an element of type "
                f"{type(v).__name__}"
            )
        out.append(float(v))
    if not out:
        raise ValueError(f"{what} is empty: nothing to score")
    if finite:
        _check_finite(out, what, allow_neg_inf)
    return out


def to_rows(
    x: Any, what: str, *, finite: bool = True, allow_neg_inf: bool = False
) -> list[list[float]]:
    """A 1-D sequence (one row) or 2-D sequence (a batch of rows) as a list of equal-length rows."""
    x = _plain(x)
    if _is_number(x) or isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        raise TypeError(f"{what} must be a sequence of numbers or of rows, got {type(x).__name__}")
    items = [_plain(v) for v in x]
    if not items:
        raise ValueError(f"{what} is empty: nothing to score")
    numbers = [_is_number(v) for v in items]
    if all(numbers):
        return [to_vector(items, what, finite=finite, allow_neg_inf=allow_neg_inf)]
    if any(numbers):
        i = numbers.index(False)
        raise TypeError(
            f"{what} must hold numbers (one row) or rows of numbers (a batch); element {i} "
            f"is a {type(items[i]).__name__} among numbers"
        )
    rows = [
        to_vector(v, f"{what}[{i}]", finite=finite, allow_neg_inf=allow_neg_inf)
        for i, v in enumerate(items)
    ]
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"{what} has rows of different lengths: row 0 has {width} values, "
                f"row {i} has {len(row)}"
            )
    return rows


def reduce_scores(scores: list[float], reduce: str) -> float:
    """Combine the per-row scores of a batch into one score for the call."""
    if reduce == "mean":
        return math.fsum(scores) / len(scores)
    return min(scores)


def check_reduce(reduce: str) -> str:
    if reduce not in ("mean", "min"):
        raise ValueError(f"reduce must be 'mean' or 'min', got {reduce!r}")
    return reduce


def clip01(value: float) -> float:
    """Absorb floating-point rounding (1.0000000000000002) in a score that is in [0, 1] by
    construction; anything further out is a bug, not rounding."""
    if -1e-9 <= value < 0.0:
        return 0.0
    if 1.0 < value <= 1.0 + 1e-9:
        return 1.0
    if not 0.0 <= value <= 1.0:
        raise AssertionError(f"internal error: score {value!r} outside [0, 1]")
    return value
