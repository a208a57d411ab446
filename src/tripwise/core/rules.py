"""The error and latency rules, and consecutive failures (ml-breaker's and Resilience4j's).

Rates are compared exactly as the user wrote them (``0.58`` is 29/50, see ``exact_ratio``), and
"above" is strict: 29 failures in 50 calls do not exceed 0.58, and no rate can exceed 1.0, so
``error_rate_above(1.0)`` is refused rather than built to never trip.
"""

from __future__ import annotations

from collections.abc import Callable

from tripwise.core.condition_base import DEFAULT_WINDOW, Condition, WindowRule
from tripwise.core.histogram import VALUE_LIMIT, exact_ratio
from tripwise.core.validation import check_exceedable_rate, check_int, check_positive, is_real
from tripwise.core.windows import FlagWindow, SequenceWindow

_exact = exact_ratio  # 0.58 is 29/50: 29 failures of 50 are exactly at the rate, not above


def _check_latency(name: str, value: float) -> float:
    ms = check_positive(name, value)
    if ms >= VALUE_LIMIT:
        raise ValueError(
            f"{name} must be below {VALUE_LIMIT:g} ms (windows hold values up to it, so a "
            f"larger threshold could never trip), got {value!r}"
        )
    return ms


class ErrorRateAbove(WindowRule):
    """Trip when the failure rate over a full window strictly exceeds ``rate`` (in [0, 1)).

    ``window`` calls (default 20) or ``window_seconds`` of time (then ``min_calls``, default 10,
    calls are needed first), never both. The count-window form is lean: its window is a
    :class:`~tripwise.core.windows.SequenceWindow` told of failures only, so successes never
    touch it.
    """

    def __init__(
        self,
        rate: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = check_exceedable_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(self.rate)
        self._setup_window(
            window,
            window_seconds,
            min_calls,
            buckets,
            default_window=DEFAULT_WINDOW,
            count_window=SequenceWindow,
        )
        self.lean = window_seconds is None

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        if isinstance(w, SequenceWindow):
            n, failed = w.record(seq, error is not None)
        else:
            w.add(None, error is not None, now)
            n, failed = w.count, w.flagged
        return n >= self.min_calls and failed * self._rate_den > self._rate_num * n

    def restart(self, seq: int) -> None:
        self._own_seq = seq
        w = self.window
        if isinstance(w, SequenceWindow):
            w.restart(seq)
        else:
            w.clear()

    def warm(self, seq: int) -> bool:
        # Once min_calls calls are in, a success only lowers the rate (or keeps it).
        w = self.window
        return not isinstance(w, SequenceWindow) or w.calls_after(seq) >= self.min_calls

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        w = self.window
        if isinstance(w, SequenceWindow):
            w.follow(calls)

    def reset(self) -> None:
        w = self.window
        if isinstance(w, SequenceWindow):
            w.restart(max(self._own_seq, w.newest()))
        else:
            w.clear()

    def failure_count(self) -> int:
        """Failures currently in the window."""
        return self.window.flagged

    def __repr__(self) -> str:
        return f"error_rate_above({self.rate!r}, {self._window_repr}{self._min_repr})"


class _SlowCallRule(WindowRule):
    """A rule over the share of slow calls: its window holds a flag per call (slow or not),
    not the latencies themselves."""

    uses_clock = True
    _limit_ms: float  # a call slower than this is slow

    def _setup_flags(
        self,
        limit_ms: float,
        window: int | None,
        window_seconds: float | None,
        min_calls: int | None,
        buckets: int,
    ) -> None:
        self._limit_ms = limit_ms
        self._setup_window(
            window,
            window_seconds,
            min_calls,
            buckets,
            default_window=DEFAULT_WINDOW,
            count_window=FlagWindow,
        )

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or latency_ms > self._limit_ms


class LatencyAbove(_SlowCallRule):
    """Trip when every latency in a full window exceeds ``threshold_ms`` (ml-breaker's rule)."""

    def __init__(
        self,
        threshold_ms: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.threshold_ms = _check_latency("threshold_ms", threshold_ms)
        self._setup_flags(self.threshold_ms, window, window_seconds, min_calls, buckets)

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        slow = latency_ms > self.threshold_ms
        w = self.window
        if type(w) is FlagWindow:  # FlagWindow.add, inlined: the hot path of this rule
            ring = w._ring
            i = w._next
            n = w.count
            if n == w.size:
                if ring[i]:
                    w.flagged -= 1
            else:
                w.count = n = n + 1
            ring[i] = slow
            if slow:
                w.flagged += 1
            i += 1
            w._next = 0 if i == w.size else i
        else:
            w.add(None, slow, now)
            n = w.count
        if not slow:  # a fast call cannot trip the rule: it leaves an unflagged call behind
            return False
        return w.flagged == n and n >= self.min_calls

    def __repr__(self) -> str:
        return f"latency_above({self.threshold_ms!r}, {self._window_repr}{self._min_repr})"


class SlowCallRateAbove(_SlowCallRule):
    """Trip when the share of calls slower than ``slow_ms`` strictly exceeds ``rate``
    (in [0, 1))."""

    def __init__(
        self,
        rate: float,
        slow_ms: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = check_exceedable_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(self.rate)
        self.slow_ms = _check_latency("slow_ms", slow_ms)
        self._setup_flags(self.slow_ms, window, window_seconds, min_calls, buckets)

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        w.add(None, latency_ms > self.slow_ms, now)
        n = w.count
        return n >= self.min_calls and w.flagged * self._rate_den > self._rate_num * n

    def __repr__(self) -> str:
        return (
            f"slow_call_rate_above({self.rate!r}, slow_ms={self.slow_ms!r}, "
            f"{self._window_repr}{self._min_repr})"
        )


class LatencyQuantileAbove(_SlowCallRule):
    """Trip when the nearest-rank ``q``-quantile of latency (0.95 = p95) exceeds ``threshold_ms``.

    Decided exactly in O(1): the q-quantile of ``n`` latencies exceeds T exactly when at least
    ``n - ceil(q*n) + 1`` of them exceed T, so only a count of slow calls is kept.
    """

    def __init__(
        self,
        q: float,
        threshold_ms: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        if not is_real(q) or not (0.0 < float(q) <= 1.0):
            raise ValueError(f"q must be a quantile in (0, 1] (0.95 for p95), got {q!r}")
        self.q: float = float(q)
        self._q_num, self._q_den = _exact(self.q)
        self.threshold_ms = _check_latency("threshold_ms", threshold_ms)
        self._setup_flags(self.threshold_ms, window, window_seconds, min_calls, buckets)

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        w.add(None, latency_ms > self.threshold_ms, now)
        n = w.count
        rank = -(-self._q_num * n // self._q_den)  # ceil(q * n), exactly
        return n >= self.min_calls and w.flagged >= n - rank + 1

    def __repr__(self) -> str:
        return (
            f"latency_quantile_above({self.q!r}, {self.threshold_ms!r}, "
            f"{self._window_repr}{self._min_repr})"
        )


class ConsecutiveFailures(Condition):
    """Trip after ``n`` consecutive failures (no window).

    Lean: a failure continues the streak only if it directly follows the previous failure in the
    breaker's call sequence, so successes in between need not be reported.
    """

    lean = True

    def __init__(self, n: int) -> None:
        self.n = check_int("n", n)
        self._streak = 0
        self._last_failure_seq = -1
        self._calls: Callable[[], int] | None = None

    @property
    def streak(self) -> int:
        """Failures in a row up to the newest call (0 once a success followed them)."""
        newest = self._own_seq
        if self._calls is not None:
            newest = max(newest, self._calls())
        return self._streak if newest <= self._last_failure_seq else 0

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        self._calls = calls

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if error is None:
            self._streak = 0
            return False
        self._streak = self._streak + 1 if seq == self._last_failure_seq + 1 else 1
        self._last_failure_seq = seq
        return self._streak >= self.n

    def reset(self) -> None:
        self._streak = 0
        self._last_failure_seq = -1

    def __repr__(self) -> str:
        return f"consecutive_failures({self.n})"
