"""A small log-bucket histogram: quantiles of a window within a bounded relative error."""

from __future__ import annotations

import math
from fractions import Fraction


def exact_ratio(value: float) -> tuple[int, int]:
    """The decimal a user wrote, as (numerator, denominator): ``0.07`` is 7/100, not the binary
    float 0.07000000000000000666..., so ranks and rate comparisons land where the user meant."""
    frac = Fraction(repr(float(value))).limit_denominator(10**9)
    return frac.numerator, frac.denominator


class LogHistogram:
    """Counts values in logarithmic buckets, so any quantile is known within ``relative_accuracy``.

    Bucket ``k`` holds positive values in ``(gamma**(k-1), gamma**k]`` with
    ``gamma = (1 + a) / (1 - a)``; its representative value is within a relative error ``a``
    of every value in it (the scheme of DDSketch). Zero and negative values get their own buckets.
    Adding, removing and merging are O(1) per bucket; a quantile read is O(buckets used).
    """

    __slots__ = ("_gamma", "_log_gamma", "_neg", "_pos", "_zero", "count", "relative_accuracy")

    def __init__(self, relative_accuracy: float = 0.01) -> None:
        if not (0.0 < relative_accuracy < 1.0):
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
        self.relative_accuracy = relative_accuracy
        self._gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self._pos: dict[int, int] = {}
        self._neg: dict[int, int] = {}
        self._zero = 0
        self.count = 0

    def _key(self, value: float) -> int:
        return math.ceil(math.log(value) / self._log_gamma)

    def add(self, value: float, n: int = 1) -> None:
        if value > 1e-12:
            k = self._key(value)
            self._pos[k] = self._pos.get(k, 0) + n
        elif value < -1e-12:
            k = self._key(-value)
            self._neg[k] = self._neg.get(k, 0) + n
        else:
            self._zero += n
        self.count += n

    def remove(self, value: float, n: int = 1) -> None:
        if value > 1e-12:
            buckets, k = self._pos, self._key(value)
        elif value < -1e-12:
            buckets, k = self._neg, self._key(-value)
        else:
            self._zero -= n
            self.count -= n
            return
        left = buckets[k] - n
        if left:
            buckets[k] = left
        else:
            del buckets[k]
        self.count -= n

    def merge(self, other: LogHistogram) -> None:
        """Add every count of ``other`` (which must use the same accuracy) into this one."""
        if other._gamma != self._gamma:
            raise ValueError("cannot merge histograms of different relative_accuracy")
        for k, c in other._pos.items():
            self._pos[k] = self._pos.get(k, 0) + c
        for k, c in other._neg.items():
            self._neg[k] = self._neg.get(k, 0) + c
        self._zero += other._zero
        self.count += other.count

    def clear(self) -> None:
        self._pos.clear()
        self._neg.clear()
        self._zero = 0
        self.count = 0

    def _value(self, k: int) -> float:
        return 2.0 * self._gamma**k / (self._gamma + 1.0)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q``-quantile (``q`` in [0, 1]), or ``None`` when empty."""
        if not (0.0 <= q <= 1.0):
            raise ValueError(f"quantile q must be in [0, 1], got {q!r}")
        if self.count == 0:
            return None
        num, den = exact_ratio(q)
        rank = max(1, -(-num * self.count // den))  # nearest-rank: ceil(q * count), exactly
        seen = 0
        for k in sorted(self._neg, reverse=True):
            seen += self._neg[k]
            if seen >= rank:
                return -self._value(k)
        seen += self._zero
        if seen >= rank:
            return 0.0
        for k in sorted(self._pos):
            seen += self._pos[k]
            if seen >= rank:
                return self._value(k)
        return self._value(max(self._pos))  # unreachable unless counts are inconsistent

    def __repr__(self) -> str:
        return f"LogHistogram(count={self.count}, relative_accuracy={self.relative_accuracy})"
