"""Bulk sample ingest: validate a batch column by column, group it, add it window by window.

The per-sample cost is what limits ingest throughput, so a batch is handled as columns:
each field is pulled out with one comprehension and checked with set/min/max/sum builtins
(C loops, no per-sample Python branches). Only a batch with something wrong in it takes the
sample-by-sample path, which names the reason of every rejected sample. Valid samples are
grouped by (router, metric); each group is summarised once per window geometry (count, failures,
sums, min, max and a log histogram per time bucket, as core :class:`~tripwise.core.Aggregate`
objects) and every target breaker's core ``TimeWindow`` takes those summaries with
``add_aggregate`` (a few operations per bucket instead of one ``add`` per sample and breaker).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tripwise.core.windows import Aggregate

MAX_FUTURE_MS = 5 * 60 * 1000
MAX_AGE_MS = 60 * 60 * 1000
# Sample values beyond this magnitude are refused (reason ``value_out_of_range``): squares and
# sums of values this size stay far from float overflow in every window aggregate, so no batch
# can make a window (and with it the evaluation of other breakers) raise.
MAX_ABS_VALUE = 1e15
HISTOGRAM_ACCURACY = 0.01  # the core TimeWindow default, which the breaker windows use

# (router id, metric) -> (ts_ms, values, oks) columns
Groups = dict[tuple[str, str], tuple[list[int], list[float], list[bool]]]
# (bucket width, with values, with histogram) -> [(time in the bucket, its aggregate), ...]
SummaryCache = dict[tuple[float, bool, bool], list[tuple[float, Aggregate]]]
_STR = {str}
_INT = {int}
_BOOL = {bool}
_FLOAT = {float}
_NUMBER = {float, int}


def group_samples(samples: list[Any], now_ms: int, rejected: Counter[str]) -> Groups:
    """Valid samples grouped by (router, metric); invalid ones counted in ``rejected``."""
    groups = _group_fast(samples, now_ms)
    if groups is None:
        groups = _group_slow(samples, now_ms, rejected)
    return groups


def _group_fast(samples: list[Any], now_ms: int) -> Groups | None:
    """The whole batch as columns, or None if any sample needs a closer look."""
    if not samples:
        return {}
    try:
        rids = [s["router_id"] for s in samples]
        metrics = [s["metric"] for s in samples]
        tss = [s["ts_ms"] for s in samples]
        values = [s["value"] for s in samples]
        oks = [s["ok"] for s in samples]
    except (KeyError, TypeError, IndexError):
        return None
    rid_set = set(rids) if set(map(type, rids)) == _STR else None
    metric_set = set(metrics) if set(map(type, metrics)) == _STR else None
    if rid_set is None or metric_set is None or "" in rid_set or "" in metric_set:
        return None
    if set(map(type, tss)) != _INT or set(map(type, oks)) != _BOOL:
        return None
    value_types = set(map(type, values))
    if value_types != _FLOAT:
        if not value_types <= _NUMBER:
            return None
        try:
            values = [float(v) for v in values]
        except OverflowError:
            return None
    if not math.isfinite(sum(values)):  # any NaN/inf makes the sum non-finite
        return None
    if max(values) > MAX_ABS_VALUE or min(values) < -MAX_ABS_VALUE:
        return None
    if min(tss) < now_ms - MAX_AGE_MS or max(tss) > now_ms + MAX_FUTURE_MS:
        return None
    if max(tss) > now_ms:  # small clock skew: count it at receipt time
        tss = [t if t <= now_ms else now_ms for t in tss]
    if len(rid_set) == 1 and len(metric_set) == 1:
        return {(rids[0], metrics[0]): (tss, values, oks)}
    index: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(rids, metrics, strict=True)):
        ix = index.get(key)
        if ix is None:
            index[key] = [i]
        else:
            ix.append(i)
    return {
        key: ([tss[i] for i in ix], [values[i] for i in ix], [oks[i] for i in ix])
        for key, ix in index.items()
    }


def _group_slow(samples: list[Any], now_ms: int, rejected: Counter[str]) -> Groups:
    """Sample by sample, naming the reason of each rejection."""
    groups: Groups = {}
    oldest = now_ms - MAX_AGE_MS
    newest = now_ms + MAX_FUTURE_MS
    isfinite = math.isfinite
    for s in samples:
        if type(s) is not dict:
            rejected["invalid_sample"] += 1
            continue
        rid = s.get("router_id")
        metric = s.get("metric")
        ts = s.get("ts_ms")
        value = s.get("value")
        ok = s.get("ok")
        if type(rid) is not str or not rid:
            rejected["invalid_router_id"] += 1
            continue
        if type(metric) is not str or not metric:
            rejected["invalid_metric"] += 1
            continue
        if type(ts) is not int:
            rejected["invalid_ts_ms"] += 1
            continue
        if type(value) is int:
            try:
                value = float(value)
            except OverflowError:
                rejected["invalid_value"] += 1
                continue
        elif type(value) is not float or not isfinite(value):
            rejected["invalid_value"] += 1
            continue
        if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
            rejected["value_out_of_range"] += 1
            continue
        if type(ok) is not bool:
            rejected["invalid_ok"] += 1
            continue
        if ts < oldest:
            rejected["ts_ms_too_old"] += 1
            continue
        if ts > now_ms:
            if ts > newest:
                rejected["ts_ms_in_future"] += 1
                continue
            ts = now_ms
        cols = groups.get((rid, metric))
        if cols is None:
            cols = groups[(rid, metric)] = ([], [], [])
        cols[0].append(ts)
        cols[1].append(value)
        cols[2].append(ok)
    return groups


def summarize(
    tss: Sequence[int],
    values: Sequence[float],
    oks: Sequence[bool],
    width: float,
    with_values: bool,
    with_histogram: bool,
) -> list[tuple[float, Aggregate]]:
    """Per time bucket of ``width`` seconds (as the core window numbers them), oldest first:
    a time inside the bucket and the aggregate of the group's samples that fall in it."""
    if int(min(tss) / 1000.0 // width) == int(max(tss) / 1000.0 // width):  # one bucket
        return [(tss[0] / 1000.0, _aggregate(values, oks, with_values, with_histogram))]
    epochs = [int(t / 1000.0 // width) for t in tss]
    index: dict[int, list[int]] = {}
    for i, e in enumerate(epochs):
        ix = index.get(e)
        if ix is None:
            index[e] = [i]
        else:
            ix.append(i)
    return [
        (
            tss[ix[0]] / 1000.0,
            _aggregate([values[i] for i in ix], [oks[i] for i in ix], with_values, with_histogram),
        )
        for _, ix in sorted(index.items())
    ]


def _aggregate(
    values: Sequence[float], oks: Sequence[bool], with_values: bool, with_histogram: bool
) -> Aggregate:
    n = len(oks)
    flagged = n - sum(oks)
    if not with_values:
        return Aggregate(count=n, flagged=flagged)
    # the core's overflow-safe summary (values held at ±VALUE_LIMIT, exact sums), whatever
    # ingest validation lets through
    return Aggregate.of(
        values,
        flagged=flagged,
        histogram_accuracy=HISTOGRAM_ACCURACY if with_histogram else None,
    )
