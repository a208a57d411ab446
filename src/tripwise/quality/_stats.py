"""The few statistical quantities the quality conditions need, in pure Python."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from types import ModuleType

_np: ModuleType | None
try:  # NumPy makes fitting a large warmup sample fast; the pure-Python path agrees
    import numpy as _np
except ImportError:  # pragma: no cover - installs without the ml extra
    _np = None

PER_MILLION = 1_000_000.0


def check_false_trips(value: float) -> float:
    """Validate ``false_trips_per_million`` and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"false_trips_per_million must be a number, got {value!r}")
    if not (math.isfinite(value) and 0.0 < value < PER_MILLION):
        raise ValueError(
            f"false_trips_per_million must be > 0 and < 1,000,000 (expected false trips per "
            f"million healthy scored calls), got {value!r}"
        )
    return float(value)


def normal_upper_quantile(alpha: float) -> float:
    """z such that P(Z > z) = alpha for a standard normal Z."""
    return NormalDist().inv_cdf(1.0 - alpha)


def _log_binom_pmf(k: int, n: int, log_p: float, log_q: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * log_p
        + (n - k) * log_q
    )


def binomial_critical_count(n: int, p: float, alpha: float) -> int:
    """The smallest k with P(Binomial(n, p) >= k) <= alpha (n + 1 if there is none).

    Seeing ``k`` or more flagged calls out of ``n`` is then evidence, at level ``alpha``, that
    the true flagged share exceeds ``p``. Exact: no normal approximation.
    """
    if p <= 0.0:
        return 1
    log_p, log_q = math.log(p), math.log1p(-p)
    tail = 0.0
    for k in range(n, -1, -1):
        tail += math.exp(_log_binom_pmf(k, n, log_p, log_q))
        if tail > alpha:
            return k + 1
    return 0  # pragma: no cover - tail reaches 1 > alpha at k = 0


def bennett_theta(variance: float, slack: float) -> float:
    """Largest theta > 0 with ``variance * (e^theta - 1 - theta) <= theta * slack``.

    For increments ``Y - slack`` where ``Y`` has mean <= 0, variance <= ``variance`` and
    ``Y <= 1``, Bennett's bound gives ``E[exp(theta * (Y - slack))] <= 1``: ``exp(theta * S)``
    is then a supermartingale for the CUSUM walk ``S``, and a walk started at 0 ever reaches
    ``h`` with probability at most ``exp(-theta * h)``.
    """
    if variance <= 0.0:
        return math.inf

    def ok(t: float) -> bool:
        return variance * math.expm1(t) - variance * t <= t * slack

    return _largest_theta(ok, steps=100)


def empirical_theta(scores: list[float], baseline: float, slack: float) -> float:
    """Largest theta with ``mean(exp(theta * (baseline - x - slack))) <= 1`` over ``scores``
    plus one worst-case score of 0 (so a sample that missed the low tail cannot make the bound
    arbitrarily loose): the adjustment coefficient of the CUSUM walk, estimated from data."""
    if baseline - slack <= 0.0:
        return math.inf  # increments can never be positive: the walk stays at 0
    increments = [baseline - x - slack for x in scores] + [baseline - slack]
    n = len(increments)
    if _np is not None and n > 256:
        arr = _np.asarray(increments, dtype=float)
        top_np = float(arr.max())
        shifted = arr - top_np

        def ok_np(t: float) -> bool:
            return float(_np.exp(t * shifted).sum()) / n <= math.exp(-t * top_np)

        return _largest_theta(ok_np, steps=60)

    def ok(t: float) -> bool:
        top = max(increments)
        return math.fsum(math.exp(t * (d - top)) for d in increments) / n <= math.exp(-t * top)

    return _largest_theta(ok, steps=60)


def excursion_factor(scores: list[float], baseline: float, slack: float, theta: float) -> float:
    """``mean(exp(theta * d) for increments d > 0)`` over ``scores`` (padded as for theta).

    A false trip needs an excursion of the CUSUM away from 0, and an excursion that starts
    with a step ``d > 0`` reaches ``h`` with probability at most ``exp(theta * (d - h))``
    (optional stopping of the supermartingale ``exp(theta * S)``). So the expected false trips
    per call are at most ``excursion_factor * exp(-theta * h)``: the factor (<= 1) tightens
    the plain bound ``exp(-theta * h)`` by how rarely, and how weakly, excursions start."""
    if not math.isfinite(theta):
        return 1.0
    increments = [baseline - x - slack for x in scores]
    if _np is not None and len(increments) > 256:
        arr = _np.asarray(increments, dtype=float)
        pos = arr[arr > 0.0]
        total = float(_np.exp(theta * pos).sum())
    else:
        total = math.fsum(math.exp(theta * d) for d in increments if d > 0.0)
    return min(1.0, total / len(increments))


def excursion_rarity(scores: list[float], baseline: float, slack: float) -> float:
    """``1 + mean(max(d, 0)) / -mean(d)`` over the increments ``d`` of ``scores``: how many
    times rarer excursions of the CUSUM are than calls that could start one.

    An excursion can only start from 0, and the walk is away from 0 while one lasts: one
    that starts with a step ``d > 0`` lasts at least ``1 + d / -mean`` calls on average
    (Wald's identity, the walk ending at or below 0; excursions that end in a trip instead
    are rarer than the budget, and ignored). A renewal argument then puts the
    excursions per call at ``q / (1 + q * E[d | d > 0] / -mean)``, ``q`` the share of
    positive increments, instead of ``q``. 1 when the increments do not drift down."""
    increments = [baseline - x - slack for x in scores]
    n = len(increments)
    if _np is not None and n > 256:
        arr = _np.asarray(increments, dtype=float)
        mean = float(arr.mean())
        positive = float(_np.maximum(arr, 0.0).sum()) / n
    else:
        mean = math.fsum(increments) / n
        positive = math.fsum(d for d in increments if d > 0.0) / n
    if mean >= 0.0:
        return 1.0
    return 1.0 + positive / -mean


def _largest_theta(ok: Callable[[float], bool], *, steps: int) -> float:
    """The largest theta >= 0 with ``ok(theta)``, for an ``ok`` that holds up to some point
    and fails past it: double an upper bound until it fails (or passes 1e6), then bisect
    ``steps`` times."""
    lo, hi = 0.0, 1.0
    while ok(hi) and hi < 1e6:
        lo, hi = hi, hi * 2.0
    for _ in range(steps):
        mid = (lo + hi) / 2.0
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def theta_slope(scores: list[float], baseline: float, slack: float, theta: float) -> float:
    """``mean(d * exp(theta * d))`` over the increments ``d`` of ``scores`` (plus the worst-case
    score of 0, as for theta): the slope of the increments' moment generating function at its
    root ``theta``. By implicit differentiation, raising every increment by ``e`` lowers theta
    by about ``theta * e / slope``: how much an error in the centre moves the trip line."""
    if not math.isfinite(theta):
        return math.inf
    increments = [baseline - x - slack for x in scores] + [baseline - slack]
    if _np is not None and len(increments) > 256:
        arr = _np.asarray(increments, dtype=float)
        return float((arr * _np.exp(theta * arr)).mean())
    return math.fsum(d * math.exp(theta * d) for d in increments) / len(increments)


def simulated_trips(
    samples: list[list[float]],
    centres: list[float],
    slacks: list[float],
    hs: list[float],
    lanes: list[int],
    *,
    chains: int = 1000,
    steps: int = 400,
    seed: int = 0,
) -> list[int] | None:
    """Trips of each CUSUM over ``chains x steps`` calls drawn with replacement from its
    lane's sample (``samples[lanes[i]]``), each sum restarting at 0 after a trip; None without
    NumPy (the pure-Python walk would cost seconds). The CUSUMs of a lane read the same draws.
    Seeded: the same inputs give the same counts."""
    if _np is None:
        return None
    rng = _np.random.default_rng(seed)
    pools = [_np.asarray(s, dtype=float) for s in samples]
    cols = _np.asarray(lanes)
    centre = _np.asarray(centres, dtype=float)
    slack = _np.asarray(slacks, dtype=float)
    h = _np.asarray(hs, dtype=float)
    s = _np.zeros((chains, len(hs)))
    trips = _np.zeros(len(hs), dtype=_np.int64)
    block = 50
    for start in range(0, steps, block):
        n = min(block, steps - start)
        draws = _np.stack([p[rng.integers(0, len(p), size=(n, chains))] for p in pools], axis=2)[
            :, :, cols
        ]
        steps_in = (centre - draws) - slack
        for t in range(n):
            s += steps_in[t]
            _np.maximum(s, 0.0, out=s)
            hit = s >= h
            if hit.any():
                trips += hit.sum(axis=0)
                s[hit] = 0.0
    return [int(k) for k in trips]
