"""A small log-bucket histogram: quantiles of a window within a bounded relative error."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from itertools import repeat
from operator import add, sub, truediv

VALUE_LIMIT = 1e140
"""Values beyond ``±VALUE_LIMIT`` (and ±inf) are held as ``±VALUE_LIMIT`` by windows and
histograms: squares and sums of up to 10**28 such values stay finite, so no running total can
overflow to inf or NaN and no exact re-sum can raise. Every realistic latency, score or metric
is far below it; beyond it the only thing a threshold can learn is "huge", which it still does."""


def saturate(value: float) -> float:
    """``value`` clamped into ``[-VALUE_LIMIT, VALUE_LIMIT]``; NaN raises ValueError."""
    if value != value:
        raise ValueError("a window or histogram value must be a number, got nan")
    return VALUE_LIMIT if value > VALUE_LIMIT else -VALUE_LIMIT if value < -VALUE_LIMIT else value


@functools.lru_cache(maxsize=512)  # quantile reads ask for the same few q's over and over
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
    Values beyond ``±VALUE_LIMIT`` (and ±inf) count in the bucket of ``±VALUE_LIMIT``; NaN is
    refused with ValueError.
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
        if not value <= VALUE_LIMIT:  # huge, inf or NaN
            value = saturate(value)
        return math.ceil(math.log(value) / self._log_gamma)

    def add(self, value: float, n: int = 1) -> None:
        if value > 1e-12:
            k = self._key(value)
            self._pos[k] = self._pos.get(k, 0) + n
        elif value < -1e-12:
            k = self._key(-value)
            self._neg[k] = self._neg.get(k, 0) + n
        elif value != value:
            raise ValueError("a histogram value must be a number, got nan")
        else:
            self._zero += n
        self.count += n

    def add_many(self, values: Sequence[float]) -> None:
        """Add every value of ``values`` (same buckets as :meth:`add`, counted in bulk)."""
        if not values:
            return
        if (
            min(values) > 1e-12 and max(values) <= VALUE_LIMIT
        ):  # (a NaN raises ValueError either way)
            logs = map(truediv, map(math.log, values), repeat(self._log_gamma))
            _add_counts(self._pos, Counter(map(math.ceil, logs)))
            self.count += len(values)
            return
        for v in values:
            self.add(v)

    def remove(self, value: float, n: int = 1) -> None:
        if value > 1e-12:
            buckets, k = self._pos, self._key(value)
        elif value < -1e-12:
            buckets, k = self._neg, self._key(-value)
        elif value != value:
            raise ValueError("a histogram value must be a number, got nan")
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
        _add_counts(self._pos, other._pos)
        _add_counts(self._neg, other._neg)
        self._zero += other._zero
        self.count += other.count

    def subtract(self, other: LogHistogram) -> None:
        """Remove every count of ``other`` (a histogram that was merged into this one)."""
        if other._gamma != self._gamma:
            raise ValueError("cannot subtract histograms of different relative_accuracy")
        pairs = ((self._pos, other._pos), (self._neg, other._neg))
        lefts = []
        for mine, theirs in pairs:
            keys = theirs.keys()
            left = (
                list(map(sub, map(mine.__getitem__, keys), theirs.values()))
                if keys <= mine.keys()
                else [-1]
            )
            if (left and min(left) < 0) or other._zero > self._zero:
                raise ValueError("cannot subtract counts this histogram does not hold")
            lefts.append(left)
        for (mine, theirs), left in zip(pairs, lefts, strict=True):
            keys = theirs.keys()
            mine.update(zip(keys, left, strict=True))
            for k in [k for k, c in zip(keys, left, strict=True) if not c]:
                del mine[k]
        self._zero -= other._zero
        self.count -= other.count

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
        if 2 * rank > self.count:  # high quantiles: walk down from the largest values
            need = self.count - rank + 1  # the rank-th smallest is the need-th largest
            seen = 0
            for k in sorted(self._pos, reverse=True):
                seen += self._pos[k]
                if seen >= need:
                    return self._value(k)
            seen += self._zero
            if seen >= need:
                return 0.0
            for k in sorted(self._neg):
                seen += self._neg[k]
                if seen >= need:
                    return -self._value(k)
            return -self._value(max(self._neg))  # unreachable unless counts are inconsistent
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


def _add_counts(into: dict[int, int], counts: dict[int, int]) -> None:
    """``into[k] += c`` for every item of ``counts``, iterated in C (no Python loop per key)."""
    keys = counts.keys()
    into.update(zip(keys, map(add, map(into.get, keys, repeat(0)), counts.values()), strict=True))
