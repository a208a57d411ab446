"""Shared-window mode: the time-window conditions of a breaker decide on the whole fleet.

Each time window of a breaker's conditions (``window_seconds=``) is replaced by a
:class:`SharedTimeWindow`: calls still land in it at once (so this process's own outcomes count
immediately), and a background thread flushes them every ``flush_interval`` into Redis time
buckets, keyed by wall-clock bucket number, and reads back the sum of the fleet's buckets in
the window. Conditions read ``count``/``flagged``/``valued``/``total`` as usual and so judge the
fleet-wide aggregate.

Staleness: flushes run on a fixed grid of ``flush_interval`` (a slow flush does not stretch
the period), so an outcome of another process is seen here at most two flush intervals plus
two flush durations (round trips) after it happened; this process's own outcomes count at
once. Count windows and ``consecutive_failures`` stay per process. While Redis is unreachable
a window reports its local window (this process's outcomes only) and flushes what Redis has
not seen when it returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from tripwise.core.windows import Aggregate, TimeWindow
from tripwise.stores import redis_scripts as lua

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.stores.redis import RedisStore
    from tripwise.stores.redis_link import RedisLink

logger = logging.getLogger("tripwise.stores.redis")

_Sums = list[float]  # count, flagged, valued, total, sum of squares


def _zero() -> _Sums:
    return [0, 0, 0, 0.0, 0.0]


def next_flush(previous: float, period: float, now: float) -> float:
    """When the flush after the one due at ``previous`` is due: on a fixed grid of ``period``
    (so the time a flush takes never stretches the period); a flush that ran late skips the
    grid points already past instead of bursting to catch up."""
    due = previous + period
    if due <= now:
        due += math.ceil((now - due) / period + 1e-9) * period
    return due


class SharedTimeWindow:
    """A time window whose totals are the fleet's (as of the last flush) plus this process's
    outcomes not yet flushed. It wraps the condition's own :class:`TimeWindow` (``local``):
    every outcome also lands there, at the breaker's ``now``, so this process's own view stays
    exact and is what the window reports while Redis is unreachable. Bucket numbers are the
    breaker's ``now`` on the wall-clock scale (the offset is taken at the first outcome), so
    they agree across hosts and follow an injected clock. Thread-safe against the flush thread
    through its own lock. Implements the conditions' window protocol (``add``, ``expire``,
    ``clear``, ``aggregate`` and the running totals)."""

    __slots__ = (
        "__weakref__",
        "_carry",
        "_clears",
        "_degraded",
        "_inflight",
        "_key",
        "_latest",
        "_lock",
        "_offset",
        "_pending",
        "_remote",
        "_since",
        "buckets",
        "count",
        "flagged",
        "local",
        "seconds",
        "sum_sq",
        "total",
        "valued",
        "width",
    )

    def __init__(self, local: TimeWindow, key: str) -> None:
        self.local = local
        self.seconds, self.buckets, self.width = local.seconds, local.buckets, local.width
        self._key = key  # bucket keys are f"{key}:{epoch}"
        self._lock = threading.Lock()
        self._offset: float | None = None  # wall clock minus the breaker's clock
        self._latest = -(2**62)  # the newest bucket an outcome or expire() named
        self._pending: dict[int, _Sums] = {}
        self._inflight = _zero()
        self._remote = _zero()
        self._since = -(2**62)  # buckets up to this one were cleared away
        self._carry = _zero()  # own outcomes after a clear, in the cleared bucket
        self._clears = 0
        self._degraded = False  # Redis unreachable: report the local window
        self.count = self.flagged = self.valued = 0
        self.total = self.sum_sq = 0.0

    def _epoch_at(self, now: float) -> int:
        if self._offset is None:
            self._offset = time.time() - now
        epoch = int((now + self._offset) // self.width)
        if epoch > self._latest:
            self._latest = epoch
        return epoch

    def _head(self) -> int:
        return max(int(time.time() // self.width), self._latest)

    def add(self, value: float | None, flag: bool, now: float) -> bool:
        with self._lock:
            epoch = self._epoch_at(now)
            self.local.add(value, flag, now)
            sums = self._pending.get(epoch)
            if sums is None:
                sums = self._pending[epoch] = _zero()
            sums[0] += 1
            if flag:
                sums[1] += 1
            if value is not None:
                sums[2] += 1
                sums[3] += value
                sums[4] += value * value
            if self._degraded:
                self._set_view()
                return True
            self.count += 1
            if flag:
                self.flagged += 1
            if value is not None:
                self.valued += 1
                self.total += value
                self.sum_sq += value * value
        return True

    def expire(self, now: float) -> None:
        """Moves the local window; the flush thread moves the fleet's."""
        with self._lock:
            self._epoch_at(now)
            self.local.expire(now)
            if self._degraded:
                self._set_view()

    def clear(self) -> None:
        with self._lock:
            self._since = self._head()  # outcomes of the current bucket and before no longer count
            self.local.clear()
            self._pending.clear()
            self._inflight = _zero()
            self._remote = _zero()
            self._carry = _zero()
            self._clears += 1
            self._set_view()

    def aggregate(
        self, now: float | None = None, *, span: float | None = None, offset: float = 0.0
    ) -> Aggregate:
        """The fleet-wide totals (``span``/``offset`` are not supported in shared mode; the
        process's own outcomes, with min/max/quantiles, are in ``local``)."""
        if span is not None or offset:
            raise ValueError("a shared window has no span/offset reads; use window.local")
        with self._lock:
            return Aggregate(
                count=int(self.count),
                flagged=int(self.flagged),
                valued=int(self.valued),
                total=self.total,
                sum_sq=self.sum_sq,
                min=None,
                max=None,
                histogram=None,
            )

    def _set_view(self) -> None:
        if self._degraded:
            w = self.local
            self.count, self.flagged, self.valued = w.count, w.flagged, w.valued
            self.total, self.sum_sq = w.total, w.sum_sq
            return
        totals = [
            r + i + c for r, i, c in zip(self._remote, self._inflight, self._carry, strict=True)
        ]
        for sums in self._pending.values():
            totals = [t + s for t, s in zip(totals, sums, strict=True)]
        self.count, self.flagged, self.valued = int(totals[0]), int(totals[1]), int(totals[2])
        self.total, self.sum_sq = totals[3], totals[4]

    def __repr__(self) -> str:
        return (
            f"SharedTimeWindow(seconds={self.seconds!r}, buckets={self.buckets}, "
            f"count={self.count}, flagged={self.flagged})"
        )

    # ------------------------------------------------------------------ used by the flush

    def take(self) -> tuple[dict[int, _Sums], list[int], int]:
        """Move pending outcomes in flight; return them, the window's epochs, a clear count."""
        with self._lock:
            head = self._head()
            oldest = head - self.buckets + 1
            if self._since < oldest:
                self._carry = _zero()
            # The cleared bucket mixes outcomes from before the clear: it is flushed, never read.
            batch = {e: s for e, s in self._pending.items() if e >= max(oldest, self._since)}
            self._pending = {}
            for sums in batch.values():
                self._inflight = [a + b for a, b in zip(self._inflight, sums, strict=True)]
            self._set_view()
            return batch, list(range(max(oldest, self._since + 1), head + 1)), self._clears

    def settle(self, fleet: _Sums | None, batch: dict[int, _Sums], clears: int) -> None:
        """Adopt the fleet's sums (``None``: Redis failed, keep the batch for later)."""
        with self._lock:
            if clears != self._clears:
                return  # cleared meanwhile: what came back predates the restart
            self._inflight = _zero()
            self._degraded = fleet is None
            if fleet is None:
                self._remote = _zero()
                for epoch, sums in batch.items():
                    mine = self._pending.setdefault(epoch, _zero())
                    for i, s in enumerate(sums):
                        mine[i] += s
                head = self._head()
                for epoch in [e for e in self._pending if e <= head - self.buckets]:
                    del self._pending[epoch]
            else:
                self._remote = fleet
                cleared = batch.get(self._since)
                if cleared is not None:
                    self._carry = [c + m for c, m in zip(self._carry, cleared, strict=True)]
            self._set_view()

    def key(self, epoch: int) -> str:
        return f"{self._key}:{epoch}"


class WindowSync:
    """Flushes every shared window of a store's breakers in one pipeline per interval."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._windows: weakref.WeakSet[SharedTimeWindow] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._script = store.client.register_script(lua.WINDOW)

    def attach(self, link: RedisLink, breaker: CircuitBreaker) -> None:
        """Swap the breaker's time windows for shared ones (same config in every process)."""
        base = link.keys[0].rsplit(":", 1)[0]
        index = 0
        for cond in breaker.trip_on.walk():
            window = getattr(cond, "window", None)
            if type(window) is not TimeWindow:
                continue
            width_ms = round(window.width * 1000)
            shared = SharedTimeWindow(window, f"{base}:w{index}-{width_ms}")
            cond.window = shared  # type: ignore[attr-defined]
            index += 1
            with self._lock:
                self._windows.add(shared)

    def run(self) -> None:
        """Flush on a fixed period (see :func:`next_flush`), so the staleness bound holds
        however long each flush takes."""
        store = self._store
        due = time.monotonic()
        while True:
            due = next_flush(due, store.flush_interval, time.monotonic())
            if store._stopping.wait(max(0.0, due - time.monotonic())):
                return
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("Redis store %r: window flush failed", self._store.namespace)

    def flush(self) -> None:
        with self._lock:
            windows = list(self._windows)
        if not windows:
            return
        store = self._store
        taken = [w.take() for w in windows]
        if not store.available:
            for w, (batch, _, clears) in zip(windows, taken, strict=True):
                w.settle(None, batch, clears)
            return
        try:
            calls = []
            for w, (batch, epochs, _) in zip(windows, taken, strict=True):
                keys = [w.key(e) for e in batch] + [w.key(e) for e in epochs]
                args: list[Any] = [len(batch), math.ceil(w.seconds * 2000)]
                for sums in batch.values():
                    args.extend(sums)
                calls.append((self._script, keys, args))
            replies = store.run_batch(calls)
        except (RedisError, OSError) as exc:
            store.mark_unavailable(exc)
            for w, (batch, _, clears) in zip(windows, taken, strict=True):
                w.settle(None, batch, clears)
            return
        store._count("flushes")
        for w, (batch, _, clears), reply in zip(windows, taken, replies, strict=True):
            c, f, v, t, q = reply
            w.settle([int(c), int(f), int(v), float(t), float(q)], batch, clears)
