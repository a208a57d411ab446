"""The simulation engine of bench/quality_scenarios.py: oracle CUSUM, tripwise's CUSUM bank
and ml-breaker's rolling mean, replayed on score streams with NumPy.

Streams are simulated *across* deployments (one NumPy row each) and step by step *along*
time, so each detector's arithmetic is the same sequence of float64 operations as the library
code (tripwise's ``QualityDrift._score`` is replayed operation for operation; the self-check
``check_replay`` compares the replay with the real class call by call). Every deployment
learns its own warmup through the real ``QualityDrift`` class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tripwise.quality import QualityDrift

Degrade = Callable[[np.random.Generator, int, int], np.ndarray]
"""``degrade(rng, rows, length)``: a (rows, length) matrix of degraded-phase scores."""

CHUNK = 5000  # calls simulated per block along time (bounds the memory of a block)


# ------------------------------------------------------------------ tripwise


@dataclass
class Bank:
    """The fitted CUSUM banks of many deployments: one row each, one column per CUSUM."""

    centres: np.ndarray  # (D, K)
    slacks: np.ndarray  # (D, K)
    hs: np.ndarray  # (D, K)
    on_ranks: np.ndarray  # (K,) which CUSUMs read ranks instead of raw scores
    warmup_calls: np.ndarray  # (D,) scored calls each warmup took
    conds: list[QualityDrift]
    ranks: list[np.ndarray | None]
    on_low: np.ndarray | None = None  # (K,) which CUSUMs read "above the low line" (0/1)
    lines: np.ndarray | None = None  # (D,) each row's low line

    def inputs(self, scores: np.ndarray) -> np.ndarray:
        """(D, T, K): what each CUSUM reads: the raw score, or its mid-rank among the row's
        known-good sample (``(bisect_left + bisect_right) / (2 n)``, the same integer sum and
        one division as ``QualityDrift._rank``)."""
        out = np.repeat(scores[:, :, None], len(self.on_ranks), axis=2)
        if self.on_ranks.any():
            for row, ref in enumerate(self.ranks):
                assert ref is not None
                left = np.searchsorted(ref, scores[row], side="left")
                right = np.searchsorted(ref, scores[row], side="right")
                out[row][:, self.on_ranks] = ((left + right) / (2 * len(ref)))[:, None]
        if self.on_low is not None and self.on_low.any():
            assert self.lines is not None
            above = (scores > self.lines[:, None]).astype(float)
            out[:, :, self.on_low] = above[:, :, None]
        return out

    def take(self, rows: int) -> Bank:
        """The first ``rows`` deployments."""
        return Bank(
            self.centres[:rows],
            self.slacks[:rows],
            self.hs[:rows],
            self.on_ranks,
            self.warmup_calls[:rows],
            self.conds[:rows],
            self.ranks[:rows],
            self.on_low,
            None if self.lines is None else self.lines[:rows],
        )

    def step(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """One call: ``s = max(0, s + ((centre - x) - slack))`` as ``QualityDrift._score``."""
        s = s + ((self.centres - x) - self.slacks)
        np.maximum(s, 0.0, out=s)
        return s


def learn_many(
    make: Callable[[], QualityDrift], pool: np.ndarray, rng: np.random.Generator, count: int
) -> Bank:
    """Fresh deployments: each one's real ``QualityDrift`` learns its own warmup from healthy
    scores drawn from ``pool`` (as many as it asks for)."""
    conds, calls = [], []
    for _ in range(count):
        cond = make()
        n = 0
        while not cond.fitted:
            for q in rng.choice(pool, size=256).tolist():
                n += 1
                cond.observe(None, 0.0, q, 0.0, n)
                if cond.fitted:
                    break
        conds.append(cond)
        calls.append(n)
    return _bank(conds, calls)


def fit_many(
    make: Callable[[], QualityDrift],
    pool: np.ndarray,
    rng: np.random.Generator,
    count: int,
    size: int,
) -> Bank:
    """Fresh deployments seeded the documented way: each one's real ``QualityDrift`` calls
    ``fit()`` on its own reference sample of ``size`` healthy scores drawn from ``pool`` (an
    offline validation run), instead of learning a live warmup."""
    conds = [make().fit(rng.choice(pool, size=size).tolist()) for _ in range(count)]
    return _bank(conds, [size] * count)


def _bank(conds: list[QualityDrift], calls: list[int]) -> Bank:
    kinds = {(c.cusum_on_ranks, c.cusum_on_low) for c in conds}
    assert len(kinds) == 1, "deployments with different CUSUM layouts"
    return Bank(
        np.array([c.cusum_centres for c in conds], dtype=float),
        np.array([c.cusum_slacks for c in conds], dtype=float),
        np.array([c.hs for c in conds], dtype=float),
        np.array(conds[0].cusum_on_ranks, dtype=bool),
        np.array(calls),
        conds,
        [None if c.ranks is None else np.array(c.ranks) for c in conds],
        np.array(conds[0].cusum_on_low, dtype=bool),
        np.array(
            [math.nan if c.low_threshold is None else c.low_threshold for c in conds],
            dtype=float,
        ),
    )


def bank_first_trip(bank: Bank, scores: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """1-based index of each row's first trip over ``scores`` (D, T); 0 = no trip."""
    x = bank.inputs(scores)
    d, t_len = scores.shape
    s = np.zeros(bank.hs.shape) if start is None else start.copy()
    first = np.zeros(d, dtype=np.int64)
    alive = np.ones(d, dtype=bool)
    for t in range(t_len):
        s = bank.step(s, x[:, t, :])
        hit = alive & (s >= bank.hs).any(axis=1)
        if hit.any():
            first[hit] = t + 1
            alive &= ~hit
            if not alive.any():
                break
    return first


def bank_state_after(bank: Bank, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CUSUM sums after ``scores`` (D, T), restarting a row at 0 after each trip (a false
    trip); returns (sums, trips per row)."""
    x = bank.inputs(scores)
    s = np.zeros(bank.hs.shape)
    trips = np.zeros(scores.shape[0], dtype=np.int64)
    for t in range(scores.shape[1]):
        s = bank.step(s, x[:, t, :])
        hit = (s >= bank.hs).any(axis=1)
        if hit.any():
            trips += hit
            s[hit] = 0.0
    return s, trips


def bank_false_trips(
    bank: Bank, pool: np.ndarray, calls_per_row: int, rng: np.random.Generator
) -> int:
    """Trips over ``calls_per_row`` healthy calls per deployment (restart at 0 after each)."""
    s = np.zeros(bank.hs.shape)
    trips = 0
    done = 0
    while done < calls_per_row:
        n = min(CHUNK, calls_per_row - done)
        x = bank.inputs(rng.choice(pool, size=(len(bank.conds), n)))
        for t in range(n):
            s = bank.step(s, x[:, t, :])
            hit = (s >= bank.hs).any(axis=1)
            if hit.any():
                trips += int(hit.sum())
                s[hit] = 0.0
        done += n
    return trips


def check_replay(bank: Bank, scores: np.ndarray) -> None:
    """The replay trips on exactly the calls where the real condition trips."""
    first = bank_first_trip(bank, scores)
    for row in range(min(5, len(first))):
        cond = bank.conds[row]
        saved = list(cond.statistics)
        cond.statistics = [0.0] * len(cond.hs)
        real = 0
        for i, q in enumerate(scores[row].tolist(), 1):
            if cond.observe(None, 0.0, q, 0.0, i):
                real = i
                break
        cond.statistics = saved
        assert real == first[row], (row, real, first[row])


# ------------------------------------------------------------------ oracle


@dataclass
class Oracle:
    """A CUSUM on the exact log-likelihood ratio of binned score densities."""

    edges: np.ndarray
    llr: np.ndarray
    h: float
    mix: float

    def increments(self, scores: np.ndarray) -> np.ndarray:
        return self.llr[np.clip(np.searchsorted(self.edges, scores, side="right") - 1, 0, None)]


def _bins(healthy: np.ndarray, degraded: np.ndarray) -> np.ndarray:
    values = np.unique(np.concatenate([healthy, degraded]))
    if len(values) <= 8:  # discrete scores (pass/fail): one bin per value
        return np.concatenate([values, [np.inf]])
    return np.concatenate([np.linspace(0.0, 1.0, 41)[:-1], [np.inf]])


def make_oracle(
    healthy: np.ndarray, degraded: np.ndarray, mix: float, rate: float, rng: np.random.Generator
) -> Oracle:
    """Knows both distributions (as 40-bin histograms of the pools; one bin per value for
    discrete scores); ``mix`` is the share of degraded scores it expects. ``h`` is tuned by
    simulation so its false-trip rate on healthy traffic is ``rate`` per call."""
    edges = _bins(healthy, degraded)
    idx0 = np.clip(np.searchsorted(edges, healthy, side="right") - 1, 0, None)
    idx1 = np.clip(np.searchsorted(edges, degraded, side="right") - 1, 0, None)
    k = len(edges) - 1
    f0 = (np.bincount(idx0, minlength=k) + 0.5) / (len(healthy) + 0.5 * k)
    f1 = (np.bincount(idx1, minlength=k) + 0.5) / (len(degraded) + 0.5 * k)
    llr = np.log((mix * f1 + (1 - mix) * f0) / f0)
    oracle = Oracle(edges, llr, math.nan, mix)
    oracle.h = _tune_h(oracle, healthy, rate, rng)
    return oracle


def _false_trip_rate(oracle: Oracle, healthy: np.ndarray, h: float, rng, calls: int) -> float:
    rows = 200
    per_row = calls // rows
    s = np.zeros(rows)
    trips = 0
    done = 0
    while done < per_row:
        n = min(CHUNK, per_row - done)
        inc = oracle.increments(rng.choice(healthy, size=(rows, n)))
        for t in range(n):
            s += inc[:, t]
            np.maximum(s, 0.0, out=s)
            hit = s >= h
            if hit.any():
                trips += int(hit.sum())
                s[hit] = 0.0
        done += n
    return trips / (rows * per_row)


def _tune_h(oracle: Oracle, healthy: np.ndarray, rate: float, rng) -> float:
    """log(false-trip rate) is linear in h for a CUSUM (slope -theta, theta = 1 for an exact
    likelihood ratio): measure the rate at two h where it is large enough to count well, and
    extrapolate the line to ``rate``."""
    h1, h2 = math.log(1e2), math.log(1e3)
    r1 = _false_trip_rate(oracle, healthy, h1, rng, 2_000_000)
    r2 = _false_trip_rate(oracle, healthy, h2, rng, 4_000_000)
    slope = (math.log(r1) - math.log(r2)) / (h2 - h1)
    return h2 + (math.log(r2) - math.log(rate)) / slope


def oracle_first_trip(oracle: Oracle, scores: np.ndarray) -> np.ndarray:
    inc = oracle.increments(scores)
    s = np.zeros(scores.shape[0])
    first = np.zeros(scores.shape[0], dtype=np.int64)
    alive = np.ones(scores.shape[0], dtype=bool)
    for t in range(scores.shape[1]):
        s += inc[:, t]
        np.maximum(s, 0.0, out=s)
        hit = alive & (s >= oracle.h)
        if hit.any():
            first[hit] = t + 1
            alive &= ~hit
            if not alive.any():
                break
    return first


def oracle_false_trips(oracle: Oracle, healthy: np.ndarray, calls: int, rng) -> int:
    return round(_false_trip_rate(oracle, healthy, oracle.h, rng, calls) * calls)


# ------------------------------------------------------------------ ml-breaker quality_below


def rolling_means(scores: np.ndarray, window: int) -> np.ndarray:
    """Mean of each full window of ``window`` calls along axis 1 (ml-breaker evaluates its
    window once it is full; its ``statistics.mean`` agrees with these to ~1e-15)."""
    c = np.cumsum(scores, axis=1)
    c = np.concatenate([np.zeros((scores.shape[0], 1)), c], axis=1)
    return (c[:, window:] - c[:, :-window]) / window


def ml_threshold(
    pool: np.ndarray, window: int, rate: float, rng: np.random.Generator, calls: int
) -> tuple[float, int]:
    """The highest threshold whose healthy trip episodes (window mean crossing below it)
    stay within ``rate`` per call over ``calls`` healthy calls; returns (threshold, calls)."""
    rows = 100
    per_row = calls // rows
    means = rolling_means(rng.choice(pool, size=(rows, per_row)), window)
    allowed = rate * rows * per_row
    lo, hi = 0.0, float(pool.mean())
    for _ in range(40):
        mid = (lo + hi) / 2
        below = means < mid
        episodes = int((below[:, 1:] & ~below[:, :-1]).sum() + below[:, 0].sum())
        if episodes <= allowed:
            lo = mid
        else:
            hi = mid
    return lo, rows * per_row


def ml_first_trip(
    lead: np.ndarray, degraded: np.ndarray, window: int, threshold: float
) -> np.ndarray:
    """1-based index of the first degraded call at which the window mean is below the
    threshold (the window starts full of the lead-in's healthy scores); 0 = never."""
    stream = np.concatenate([lead[:, -window:], degraded], axis=1)
    means = rolling_means(stream, window)[:, 1:]  # the window ending at degraded call t
    below = means < threshold
    first = below.argmax(axis=1) + 1
    first[~below.any(axis=1)] = 0
    return first


# ------------------------------------------------------------------ window conditions


def window_mean_first_trip(
    lead: np.ndarray, degraded: np.ndarray, window: int, min_calls: int, trip: Callable
) -> np.ndarray:
    """Generic count-window replay: ``trip(n, total, sum_sq)`` arrays -> bool arrays."""
    stream = np.concatenate([lead[:, -window:], degraded], axis=1)
    c = np.concatenate([np.zeros((stream.shape[0], 1)), np.cumsum(stream, axis=1)], axis=1)
    c2 = np.concatenate([np.zeros((stream.shape[0], 1)), np.cumsum(stream**2, axis=1)], axis=1)
    total = (c[:, window:] - c[:, :-window])[:, 1:]
    sq = (c2[:, window:] - c2[:, :-window])[:, 1:]
    hit = trip(window, total, sq)
    first = hit.argmax(axis=1) + 1
    first[~hit.any(axis=1)] = 0
    return first


def ml_episodes(means: np.ndarray, threshold: float) -> int:
    """Trip episodes: window means crossing below ``threshold`` (one per excursion)."""
    below = means < threshold
    return int((below[:, 1:] & ~below[:, :-1]).sum() + below[:, 0].sum())


def ml_threshold_on(means: np.ndarray, allowed: float, top: float, steps: int = 24) -> float:
    """The highest threshold (to ``top / 2**steps``) with at most ``allowed`` episodes."""
    lo, hi = 0.0, top
    for _ in range(steps):
        mid = (lo + hi) / 2
        if ml_episodes(means, mid) <= allowed:
            lo = mid
        else:
            hi = mid
    return lo
