"""Shared-window mode: the time-window conditions of a breaker decide on the whole fleet.

Each time window of a breaker's conditions (``window_seconds=``) is replaced by a
:class:`SharedTimeWindow`: calls still land in it at once (so this process's own outcomes count
immediately), and a background thread flushes them every ``flush_interval`` into Redis time
buckets, keyed by wall-clock bucket number, and reads back the sum of the fleet's buckets in
the window. Conditions read ``count``/``flagged``/``valued``/``total`` as usual and so judge the
fleet-wide aggregate.

Staleness: an outcome of another process is seen here at most two flush intervals (plus two
round trips) after it happened; this process's own outcomes count at once. Count windows and
``consecutive_failures`` stay per process. While Redis is unreachable a window holds local
outcomes only and flushes them when Redis returns.
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


class SharedTimeWindow(TimeWindow):
    """A time window whose totals are the fleet's (as of the last flush) plus this process's
    outcomes not yet flushed. Thread-safe against the flush thread through its own lock."""

    __slots__ = (
        "__weakref__",
        "_carry",
        "_clears",
        "_inflight",
        "_key",
        "_lock",
        "_pending",
        "_remote",
        "_since",
    )

    def __init__(self, seconds: float, buckets: int, key: str) -> None:
        super().__init__(seconds, buckets)
        self._key = key  # bucket keys are f"{key}:{epoch}"
        self._lock = threading.Lock()
        self._pending: dict[int, _Sums] = {}
        self._inflight = _zero()
        self._remote = _zero()
        self._since = -(2**62)  # buckets up to this one were cleared away
        self._carry = _zero()  # own outcomes after a clear, in the cleared bucket
        self._clears = 0

    def _epoch(self) -> int:
        return int(time.time() // self.width)

    def add(self, value: float | None, flag: bool, now: float) -> bool:
        epoch = self._epoch()  # wall clock: bucket numbers must agree across hosts
        with self._lock:
            sums = self._pending.get(epoch)
            if sums is None:
                sums = self._pending[epoch] = _zero()
            sums[0] += 1
            self.count += 1
            if flag:
                sums[1] += 1
                self.flagged += 1
            if value is not None:
                sums[2] += 1
                sums[3] += value
                sums[4] += value * value
                self.valued += 1
                self.total += value
                self.sum_sq += value * value
        return True

    def expire(self, now: float) -> None:
        """Nothing to do here: the flush thread moves the window forward."""

    def clear(self) -> None:
        with self._lock:
            self._since = self._epoch()  # outcomes of the current bucket and before no longer count
            self._pending.clear()
            self._inflight = _zero()
            self._remote = _zero()
            self._carry = _zero()
            self._clears += 1
            self._set_view()

    def aggregate(
        self, now: float | None = None, *, span: float | None = None, offset: float = 0.0
    ) -> Aggregate:
        """The fleet-wide totals (``span``/``offset`` are not supported in shared mode)."""
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
        totals = [
            r + i + c for r, i, c in zip(self._remote, self._inflight, self._carry, strict=True)
        ]
        for sums in self._pending.values():
            totals = [t + s for t, s in zip(totals, sums, strict=True)]
        self.count, self.flagged, self.valued = int(totals[0]), int(totals[1]), int(totals[2])
        self.total, self.sum_sq = totals[3], totals[4]

    # ------------------------------------------------------------------ used by the flush

    def take(self) -> tuple[dict[int, _Sums], list[int], int]:
        """Move pending outcomes in flight; return them, the window's epochs, a clear count."""
        head = self._epoch()
        oldest = head - self.buckets + 1
        with self._lock:
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
            if fleet is None:
                self._remote = _zero()
                for epoch, sums in batch.items():
                    mine = self._pending.setdefault(epoch, _zero())
                    for i, s in enumerate(sums):
                        mine[i] += s
                head = self._epoch()
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
            shared = SharedTimeWindow(window.seconds, window.buckets, f"{base}:w{index}-{width_ms}")
            cond.window = shared  # type: ignore[attr-defined]
            index += 1
            with self._lock:
                self._windows.add(shared)

    def run(self) -> None:
        store = self._store
        while not store._stopping.wait(store.flush_interval):
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
            pipe = store.client.pipeline(transaction=False)
            for w, (batch, epochs, _) in zip(windows, taken, strict=True):
                keys = [w.key(e) for e in batch] + [w.key(e) for e in epochs]
                args: list[Any] = [len(batch), math.ceil(w.seconds * 2000)]
                for sums in batch.values():
                    args.extend(sums)
                self._script(keys=keys, args=args, client=pipe)
            replies = pipe.execute()
        except (RedisError, OSError) as exc:
            store.mark_unavailable(exc)
            for w, (batch, _, clears) in zip(windows, taken, strict=True):
                w.settle(None, batch, clears)
            return
        store._count("flushes")
        for w, (batch, _, clears), reply in zip(windows, taken, replies, strict=True):
            c, f, v, t, q = reply
            w.settle([int(c), int(f), int(v), float(t), float(q)], batch, clears)
