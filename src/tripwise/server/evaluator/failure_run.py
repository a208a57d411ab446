"""The trailing run of failed samples ordered by ``ts_ms`` (``consecutive_failures``, §3).

Samples arrive out of order (several clients, batches flushed at different times), so the run
is defined on sample time, not arrival: the failures stamped after the latest success (a
failure stamped at the same millisecond as that success counts only if it arrived after it)
and still inside the window. Kept as sorted failure timestamps with a count per millisecond,
so memory is bounded by the window's milliseconds, not by the number of samples.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence

_NEVER = -(2**62)


class FailureRun:
    """Failures after the latest success, by sample time; ``length(now)`` is the run."""

    __slots__ = ("_counts", "_times", "last_success_ms", "total")

    def __init__(self) -> None:
        self._times: list[int] = []  # sorted distinct failure timestamps (ms)
        self._counts: list[int] = []  # failures per timestamp
        self.total = 0
        self.last_success_ms = _NEVER

    def add(self, ts_ms: int, ok: bool) -> None:
        """One sample; ``ts_ms`` is already clamped to the server clock."""
        if ok:
            if ts_ms >= self.last_success_ms:
                self.last_success_ms = ts_ms
                self._drop_through(ts_ms)
            return
        if ts_ms < self.last_success_ms:
            return  # an older failure: a later success already ended its run
        times = self._times
        if not times or ts_ms > times[-1]:
            times.append(ts_ms)
            self._counts.append(1)
        else:
            i = bisect_left(times, ts_ms)
            if i < len(times) and times[i] == ts_ms:
                self._counts[i] += 1
            else:
                insort(times, ts_ms)
                self._counts.insert(i, 1)
        self.total += 1

    def add_many(self, ts_ms: Sequence[int], oks: Sequence[bool]) -> None:
        """A batch in arrival order (what :meth:`add` would do sample by sample)."""
        if all(oks):
            newest = max(ts_ms, default=_NEVER)
            if newest >= self.last_success_ms:
                self.last_success_ms = newest
                self._drop_through(newest)
            return
        for t, ok in zip(ts_ms, oks, strict=True):
            self.add(t, ok)

    def _drop_through(self, ts_ms: int) -> None:
        """Forget the failures stamped at or before ``ts_ms``."""
        i = bisect_right(self._times, ts_ms)
        if i:
            self.total -= sum(self._counts[:i])
            del self._times[:i]
            del self._counts[:i]

    def length(self, now_ms: int, window_ms: int) -> int:
        """The run inside the window ``(now - window_ms, now]``; older failures are forgotten."""
        self._drop_through(now_ms - max(window_ms, 1))
        return self.total

    def clear(self, since_ms: int = _NEVER) -> None:
        """Start over; failures stamped before ``since_ms`` will not count (a new phase)."""
        self._times.clear()
        self._counts.clear()
        self.total = 0
        self.last_success_ms = since_ms
