"""The classic breaker APIs of the seed systems, on tripwise's engine.

Two shapes live here, both thin layers over :class:`tripwise.CircuitBreaker`:

- the "classic module" API: ``CircuitBreaker(failure_threshold, recovery_timeout,
  half_open_max_calls, failure_rate_threshold, success_threshold, excluded_exceptions, name)``,
  ``CircuitBreakerError.retry_after``, ``CircuitStats``, ``CircuitBreakerRegistry``,
  ``circuit_breaker(name, ...)``, ``get_circuit_stats``, ``get_all_circuit_stats``;
- the "AI platform" API: ``CircuitBreakerConfig(failure_threshold, timeout_seconds,
  recovery_timeout_seconds, success_threshold)``, ``get_circuit_breaker(name, config)`` and
  ``await breaker.call(async_fn)``, where a call slower than ``timeout_seconds`` is cancelled
  and counts as a failure.

``CircuitBreakerError`` subclasses :class:`tripwise.CircuitBreakerOpen`, so code catching either
keeps working.

Every classic breaker's engine lives in a tripwise :class:`~tripwise.Registry` (the process-wide
one unless ``registry=`` says otherwise; ``registry=None`` keeps it out), so
:func:`tripwise.observe.snapshot`, the status app's readiness and
:func:`tripwise.observe.register_metrics` see it under its name (the seed dashboards'
``circuit_breaker_state{name="max_gpu"}`` with ``preset="seed"``). As with native breakers, one
name is one breaker per registry: a second breaker with a taken name is refused. The module
functions (``circuit_breaker``, ``get_circuit_breaker``, ``get_circuit_stats``, ...) share one
classic registry, so ``get_circuit_stats("max_gpu")`` sees a ``get_circuit_breaker("max_gpu")``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tripwise.core.breaker import CircuitBreaker as _Engine
from tripwise.core.conditions import Condition, consecutive_failures, error_rate_above
from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.registry import Registry
from tripwise.core.states import State
from tripwise.core.validation import (
    check_exceedable_rate,
    check_exception_types,
    check_int,
    check_positive,
)
from tripwise.observe.snapshot import add_status_fields
from tripwise.policies.timeout import _await_with_timeout, _OurTimeout

F = TypeVar("F", bound=Callable[..., Any])
_DEFAULT_REGISTRY: Any = object()  # sentinel: "the process-wide tripwise registry"

CircuitState = State
"""The classic name of the state enum (values ``closed``, ``open``, ``half_open``)."""


class CircuitBreakerError(CircuitBreakerOpen):
    """Raised when the circuit does not admit a call; ``retry_after`` is in seconds."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        name: str = "",
        state: State = State.OPEN,
        trip_count: int = 0,
    ) -> None:
        super().__init__(name, state, trip_count, retry_after or 0.0)
        self.retry_after = retry_after or 0.0
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            functools.partial(
                type(self), name=self.name, state=self.state, trip_count=self.trip_count
            ),
            (self.args[0], self.retry_after),
        )


@dataclass
class CircuitStats:
    """Counters of one classic breaker, as its monitoring endpoints report them."""

    name: str
    state: State
    total_requests: int = 0
    total_successes: int = 0
    total_failures: int = 0
    total_timeouts: int = 0
    rejected_requests: int = 0
    trip_count: int = 0
    last_failure_time: float | None = None
    last_success_time: float | None = None
    opened_at: float | None = None
    uptime_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        done = self.total_successes + self.total_failures
        return self.total_failures / done if done else 0.0

    @property
    def success_rate(self) -> float:
        done = self.total_successes + self.total_failures
        return self.total_successes / done if done else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "total_requests": self.total_requests,
            "total_successes": self.total_successes,
            "total_failures": self.total_failures,
            "total_timeouts": self.total_timeouts,
            "rejected_requests": self.rejected_requests,
            "trip_count": self.trip_count,
            "failure_rate": self.failure_rate,
            "success_rate": self.success_rate,
            "last_failure_time": self.last_failure_time,
            "last_success_time": self.last_success_time,
            "opened_at": self.opened_at,
            "uptime_seconds": self.uptime_seconds,
            **self.extra,
        }


class CircuitBreaker:
    """The classic breaker: opens after ``failure_threshold`` consecutive failures (or when
    the failure rate of the last ``failure_rate_window`` calls exceeds
    ``failure_rate_threshold``), retries after ``recovery_timeout`` seconds, closes after
    ``success_threshold`` successful probes. ``timeout`` (seconds, async calls only) cancels a
    slow call and counts it as a failure. ``registry``: the tripwise registry its engine joins
    (process-wide by default; None: none)."""

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        failure_rate_threshold: float | None = None,
        success_threshold: int = 1,
        excluded_exceptions: Iterable[type[BaseException]] = (),
        name: str | None = None,
        *,
        timeout: float | None = None,
        failure_rate_window: int = 20,
        registry: Registry | None = _DEFAULT_REGISTRY,
        **engine_options: Any,
    ) -> None:
        # this API's own names in its errors (the engine calls recovery_timeout half_open_after)
        check_int("failure_threshold", failure_threshold)
        check_int("failure_rate_window", failure_rate_window)
        check_int("half_open_max_calls", half_open_max_calls)
        check_int("success_threshold", success_threshold)
        check_positive("recovery_timeout", recovery_timeout)
        if failure_rate_threshold is not None:
            check_exceedable_rate("failure_rate_threshold", failure_rate_threshold)
        condition: Condition = consecutive_failures(failure_threshold)
        if failure_rate_threshold is not None:
            condition = condition | error_rate_above(
                failure_rate_threshold, window=failure_rate_window
            )
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        self.timeout = timeout
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.success_threshold = success_threshold
        if registry is not _DEFAULT_REGISTRY:
            engine_options["registry"] = registry
        self.engine = _Engine(
            condition,
            name=name,
            half_open_after=recovery_timeout,
            half_open_max_calls=half_open_max_calls,
            recovery_threshold=success_threshold,
            ignore_exceptions=check_exception_types("excluded_exceptions", excluded_exceptions),
            **engine_options,
        )
        self.name = self.engine.name
        self._lock = threading.Lock()
        self._timeouts = 0
        if timeout is not None:  # the seed's /circuit-breakers view reports it
            add_status_fields(self.engine, _timeouts_of(weakref.ref(self)))
        self._last_failure: float | None = None
        self._last_success: float | None = None
        self._created = time.monotonic()

    # -- state
    @property
    def state(self) -> State:
        return self.engine.state

    @property
    def is_closed(self) -> bool:
        return self.engine.state is State.CLOSED

    @property
    def is_open(self) -> bool:
        return self.engine.state is State.OPEN

    @property
    def stats(self) -> CircuitStats:
        s = self.engine.stats()
        with self._lock:
            return CircuitStats(
                name=self.name,
                state=s.state,
                total_requests=s.calls + s.rejected + s.ignored,
                total_successes=s.successes,
                total_failures=s.failures,
                total_timeouts=self._timeouts,
                rejected_requests=s.rejected,
                trip_count=s.trip_count,
                last_failure_time=self._last_failure,
                last_success_time=self._last_success,
                opened_at=s.opened_at,
                uptime_seconds=time.monotonic() - self._created,
            )

    def reset(self) -> None:
        self.engine.reset()

    def _status_fields(self) -> dict[str, Any]:
        with self._lock:
            return {"total_timeouts": self._timeouts}

    # -- calls
    def _rejected(self, err: CircuitBreakerOpen) -> CircuitBreakerError:
        return CircuitBreakerError(
            f"Circuit breaker '{self.name}' is {err.state.value}",
            err.retry_after,
            name=err.name,
            state=err.state,
            trip_count=err.trip_count,
        )

    def _note(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._last_success = time.time()
            else:
                self._last_failure = time.time()

    @contextlib.contextmanager
    def _classic_outcome(self) -> Iterator[None]:
        """Around one engine call (sync or async): note when it last succeeded or failed, and
        turn the engine's rejection into the classic :class:`CircuitBreakerError`."""
        try:
            yield
        except CircuitBreakerOpen as err:
            if isinstance(err, CircuitBreakerError):
                raise
            if err.__cause__ is not None:  # the call failed and tripped the breaker
                self._note(False)
            raise self._rejected(err) from err.__cause__
        except Exception:
            self._note(False)
            raise
        self._note(True)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` under the breaker. For an async ``fn`` this returns an awaitable."""
        if inspect.iscoroutinefunction(fn):
            return self.acall(fn, *args, **kwargs)
        with self._classic_outcome():
            return self.engine.call(fn, *args, **kwargs)

    async def acall(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Await ``fn`` under the breaker, cancelling it after ``timeout`` seconds if set."""
        timeout = self.timeout

        async def run() -> Any:
            if timeout is None:
                return await fn(*args, **kwargs)
            try:
                return await _await_with_timeout(fn(*args, **kwargs), timeout)
            except _OurTimeout:
                with self._lock:
                    self._timeouts += 1
                raise TimeoutError(
                    f"call guarded by {self.name!r} timed out after {timeout}s"
                ) from None

        with self._classic_outcome():
            return await self.engine.acall(run)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(fn, *args, **kwargs)

            async_wrapper.circuit_breaker = self  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)

        wrapper.circuit_breaker = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"classic.CircuitBreaker(name={self.name!r}, state={self.state.value})"


def _timeouts_of(ref: weakref.ref[CircuitBreaker]) -> Callable[[], dict[str, Any]]:
    """The snapshot fields of a classic breaker, without keeping it alive."""

    def fields() -> dict[str, Any]:
        breaker = ref()
        return {} if breaker is None else breaker._status_fields()

    return fields


class CircuitBreakerRegistry:
    """Named classic breakers. Their engines join ``registry`` (the process-wide tripwise
    registry by default; None: none), where observability finds them."""

    def __init__(self, registry: Registry | None = _DEFAULT_REGISTRY) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._registry = registry

    def get_or_create(self, name: str, **options: Any) -> CircuitBreaker:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                options.setdefault("registry", self._registry)
                breaker = CircuitBreaker(name=name, **options)
                self._breakers[name] = breaker
            return breaker

    def get(self, name: str) -> CircuitBreaker | None:
        with self._lock:
            return self._breakers.get(name)

    def breaker(self, name: str, **options: Any) -> Callable[[F], F]:
        """Decorator guarding a function with the breaker ``name``."""
        return self.get_or_create(name, **options)

    def get_stats(self, name: str) -> CircuitStats | None:
        breaker = self.get(name)
        return breaker.stats if breaker is not None else None

    def get_all_stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            breakers = list(self._breakers.values())
        return {b.name: b.stats.to_dict() for b in breakers}

    def reset_all(self) -> None:
        with self._lock:
            breakers = list(self._breakers.values())
        for b in breakers:
            b.reset()


_registry = CircuitBreakerRegistry()


def circuit_breaker(name: str, **options: Any) -> Callable[[F], F]:
    """Decorator: guard a function with the classic breaker ``name`` (created on first use)."""
    return _registry.breaker(name, **options)


def get_circuit_stats(name: str) -> dict[str, Any] | None:
    stats = _registry.get_stats(name)
    return stats.to_dict() if stats is not None else None


def get_all_circuit_stats() -> dict[str, dict[str, Any]]:
    return _registry.get_all_stats()


# --- the AI-platform shape -------------------------------------------------------------------


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Open after ``failure_threshold`` consecutive failures; calls slower than
    ``timeout_seconds`` fail; probe after ``recovery_timeout_seconds``; close after
    ``success_threshold`` successful probes."""

    failure_threshold: int = 3
    timeout_seconds: float = 5.0
    recovery_timeout_seconds: float = 30.0
    success_threshold: int = 2


def get_circuit_breaker(name: str, config: CircuitBreakerConfig | None = None) -> CircuitBreaker:
    """The breaker ``name``, created with ``config`` (defaults if omitted) on first use."""
    cfg = config or CircuitBreakerConfig()
    return _registry.get_or_create(
        name,
        failure_threshold=cfg.failure_threshold,
        recovery_timeout=cfg.recovery_timeout_seconds,
        success_threshold=cfg.success_threshold,
        timeout=cfg.timeout_seconds,
    )


def get_all_circuit_breakers() -> dict[str, CircuitBreaker]:
    """Every breaker made by :func:`get_circuit_breaker` or :func:`circuit_breaker` (for a
    ``/circuit-breakers`` view)."""
    with _registry._lock:
        return dict(_registry._breakers)


__all__ = [
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerError",
    "CircuitBreakerRegistry",
    "CircuitState",
    "CircuitStats",
    "circuit_breaker",
    "get_all_circuit_breakers",
    "get_all_circuit_stats",
    "get_circuit_breaker",
    "get_circuit_stats",
]
