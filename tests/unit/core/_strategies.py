"""Hypothesis strategies for conditions and call histories.

Every number drawn here is a dyadic rational (quality k/16, latency k/64 s, time steps k/4 s,
dyadic rates) so that float arithmetic on them is exact: a mismatch against the reference is a
logic error, never a rounding artefact. Decimal-boundary behaviour is tested separately.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ._reference import Rec, Rule, WindowSpec

RATES = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]
QUALITIES = [k / 16 for k in range(17)]
QUALITY_THRESHOLDS = [k / 16 for k in range(1, 16)]
LATENCIES_MS = [k * 15.625 for k in range(17)]  # k/64 s
LATENCY_THRESHOLDS_MS = [40.0, 100.0, 200.0]
QUANTILES = [0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]
GAPS_S = [0.0, 0.25, 0.5, 1.0, 2.0, 3.75, 8.0]

KINDS = [
    "quality_below",
    "low_quality_rate_above",
    "latency_above",
    "error_rate_above",
    "slow_call_rate_above",
    "latency_quantile_above",
    "consecutive_failures",
]


@st.composite
def window_specs(draw: st.DrawFn, allow_time: bool = True) -> WindowSpec:
    if allow_time and draw(st.booleans()):
        buckets = draw(st.sampled_from([1, 2, 4, 8]))
        min_calls = draw(st.none() | st.integers(1, 6))
        return WindowSpec(window=20, window_seconds=8.0, buckets=buckets, min_calls=min_calls)
    window = draw(st.integers(1, 10))
    min_calls = draw(st.none() | st.integers(1, window))
    return WindowSpec(window=window, min_calls=min_calls)


@st.composite
def rules(draw: st.DrawFn, allow_time: bool = True, kinds: tuple[str, ...] = tuple(KINDS)) -> Rule:
    kind = draw(st.sampled_from(kinds))
    spec = draw(window_specs(allow_time))
    params: tuple[object, ...]
    if kind == "quality_below":
        params = (draw(st.sampled_from(QUALITY_THRESHOLDS)),)
    elif kind == "low_quality_rate_above":
        params = (draw(st.sampled_from(RATES)), draw(st.sampled_from(QUALITY_THRESHOLDS)))
    elif kind == "latency_above":
        params = (draw(st.sampled_from(LATENCY_THRESHOLDS_MS)),)
    elif kind == "error_rate_above":
        params = (draw(st.sampled_from(RATES)),)
    elif kind == "slow_call_rate_above":
        params = (draw(st.sampled_from(RATES)), draw(st.sampled_from(LATENCY_THRESHOLDS_MS)))
    elif kind == "latency_quantile_above":
        params = (draw(st.sampled_from(QUANTILES)), draw(st.sampled_from(LATENCY_THRESHOLDS_MS)))
    else:
        params = (draw(st.integers(1, 5)),)
        spec = WindowSpec()
    return Rule(kind, params, spec)


@st.composite
def calls(draw: st.DrawFn, scored_failures: bool = True) -> tuple[bool, float, float | None, float]:
    """(error, latency_ms, quality, gap_s) of one call; gap is the idle time before it."""
    error = draw(st.booleans())
    latency = draw(st.sampled_from(LATENCIES_MS))
    quality = draw(st.none() | st.sampled_from(QUALITIES))
    if error and not scored_failures:
        quality = None
    gap = draw(st.sampled_from(GAPS_S))
    return error, latency, quality, gap


@st.composite
def histories(draw: st.DrawFn, max_size: int = 40) -> list[Rec]:
    """Records with non-decreasing timestamps, as a breaker would produce them."""
    out: list[Rec] = []
    t = 1000.0
    for error, latency, quality, gap in draw(st.lists(calls(), min_size=1, max_size=max_size)):
        t += gap
        out.append(Rec(error, latency, quality, t))
    return out
