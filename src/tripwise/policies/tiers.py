"""The tiers of a fallback chain: live services, a cache of good answers, a degraded answer."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.conditions import consecutive_failures
from tripwise.core.path import Tally
from tripwise.core.validation import check_positive
from tripwise.policies._checks import check_callable
from tripwise.policies._pipeline import (
    Accept,
    ScoreFn,
    as_timeout,
    build,
    check_quality_args,
)
from tripwise.policies.cache import CacheBackend, MemoryCache
from tripwise.policies.retry import Retry, _Attempts
from tripwise.policies.timeout import Timeout

LIVE, CACHE, DEGRADED = 0, 1, 2

DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_HALF_OPEN_AFTER = 30.0


def _counter_value(counter: Tally) -> int:
    return counter.value()  # exact, without parsing repr(itertools.count)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"tier name must be a non-empty string, got {name!r}")
    return name


class _TierBase:
    kind = LIVE
    name: str

    def __init__(self) -> None:
        self._usage = Tally()  # next() from any thread, no lock
        self._failures = Tally()

    @property
    def usage(self) -> int:
        """How many chain calls this tier answered."""
        return _counter_value(self._usage)

    @property
    def failures(self) -> int:
        """How many chain calls this tier was tried for and did not answer."""
        return _counter_value(self._failures)


class Tier(_TierBase):
    """A live tier: ``fn`` guarded by its own breaker, timeout, retry and quality check.

    - ``breaker``: a :class:`~tripwise.CircuitBreaker` (without a fallback: the next tier is
      the fallback); ``None`` (default) makes one that opens after 3 consecutive failures and
      probes after 30 s, named ``"<chain>.<tier>"``; ``False`` runs the tier unguarded.
    - ``timeout``: seconds or a :class:`Timeout`, per attempt.
    - ``retry``: a :class:`Retry` around the breaker (each attempt passes the breaker).
    - ``accept(answer) -> bool`` and/or ``score_fn(answer) -> float`` with ``min_quality``: an
      answer that fails counts as a failure of the tier (and of its breaker), and the chain
      moves on. The score is also reported to the breaker, so quality conditions see it.
    """

    kind = LIVE

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        breaker: CircuitBreaker | bool | None = None,
        timeout: Timeout | float | None = None,
        retry: Retry | None = None,
        accept: Accept | None = None,
        score_fn: ScoreFn | None = None,
        min_quality: float | None = None,
    ) -> None:
        super().__init__()
        self.name = _check_name(name)
        if not callable(fn):
            raise TypeError(f"tier {name!r}: fn must be callable, got {fn!r}")
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        if breaker is True:
            breaker = None
        if breaker is not None and breaker is not False:
            if not isinstance(breaker, CircuitBreaker):
                raise TypeError(
                    f"tier {name!r}: breaker must be a CircuitBreaker, None or False, "
                    f"got {breaker!r}"
                )
            if breaker.fallback is not None:
                raise ValueError(
                    f"tier {name!r}: its breaker {breaker.name!r} has a fallback; in a chain "
                    "the next tier is the fallback, so give the breaker none"
                )
        self._breaker_arg = breaker
        self.breaker: CircuitBreaker | None = (
            breaker if isinstance(breaker, CircuitBreaker) else None
        )
        self.timeout = as_timeout(timeout, f"tier {name!r}")
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"tier {name!r}: retry must be a Retry, got {retry!r}")
        self.retry = retry
        check_quality_args(f"tier {name!r}", accept, score_fn, min_quality)
        self.accept = accept
        self.score_fn = score_fn
        self.min_quality = min_quality
        self.guarded: Callable[..., Any] = fn
        self.aguarded: Callable[..., Any] = fn

    def _bind(self, chain_name: str, clock: Any, registry: Any) -> None:
        """Called once by the chain: make the default breaker, build the guarded callables."""
        if self._breaker_arg is None:
            self.breaker = CircuitBreaker(
                consecutive_failures(DEFAULT_FAILURE_THRESHOLD),
                name=f"{chain_name}.{self.name}",
                half_open_after=DEFAULT_HALF_OPEN_AFTER,
                clock=clock,
                registry=registry,
            )
        self.guarded = build(
            self.fn,
            timeout=self.timeout,
            breaker=self.breaker,
            accept=self.accept,
            score_fn=self.score_fn,
            min_quality=self.min_quality,
        )
        if self.is_async:
            self.aguarded = self.guarded
        else:
            guarded = self.guarded

            async def aguarded(*args: Any, **kwargs: Any) -> Any:
                return guarded(*args, **kwargs)

            self.aguarded = aguarded

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any], counter: _Attempts) -> Any:
        """Call the guarded function (through the tier's retry, if any); ``counter`` counts
        the attempts, including one the breaker rejected."""
        if self.retry is None:
            counter.n += 1
            return self.guarded(*args, **kwargs)
        return self.retry._run(self.guarded, args, kwargs, counter)

    async def arun(self, args: tuple[Any, ...], kwargs: dict[str, Any], counter: _Attempts) -> Any:
        """:meth:`run` for ``acall``: awaits the tier (a sync ``fn`` runs inline)."""
        if self.retry is None:
            counter.n += 1
            return await self.aguarded(*args, **kwargs)
        return await self.retry._arun(self.aguarded, args, kwargs, counter)

    def __repr__(self) -> str:
        parts = [repr(self.name), getattr(self.fn, "__qualname__", repr(self.fn))]
        if self.timeout is not None:
            parts.append(f"timeout={self.timeout.seconds:g}")
        if self.retry is not None:
            parts.append(f"retry={self.retry!r}")
        return f"Tier({', '.join(parts)})"


class CacheTier(_TierBase):
    """Serves the last good answer stored for the call's key, with its age.

    Every answer of a live tier is stored under the chain's key for the call; this tier
    serves it while it is younger than ``ttl`` seconds. ``backend`` defaults to a
    :class:`MemoryCache` of ``max_entries``; any :class:`CacheBackend` (e.g. Redis) works.
    ``clock`` gives wall seconds for ages (``time.time`` by default).
    """

    kind = CACHE

    def __init__(
        self,
        name: str = "cache",
        *,
        ttl: float = 300.0,
        max_entries: int = 1024,
        backend: CacheBackend | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.name = _check_name(name)
        self.ttl = check_positive(f"cache tier {name!r}: ttl", ttl)
        check_callable(f"cache tier {name!r}: clock", clock, "a callable returning seconds")
        self.clock = clock if clock is not None else time.time
        if backend is None:
            backend = MemoryCache(max_entries, clock=self.clock)
        elif not isinstance(backend, CacheBackend):
            raise TypeError(
                f"cache tier {name!r}: backend needs get(key) and set(key, value, stored_at, "
                f"ttl), got {backend!r}"
            )
        self.backend = backend
        self._aget = getattr(backend, "aget", None)
        self._aset = getattr(backend, "aset", None)

    def store(self, key: str, value: Any) -> None:
        self.backend.set(key, value, self.clock(), self.ttl)

    def lookup(self, key: str) -> tuple[Any, float] | None:
        """``(value, age_seconds)`` of a fresh entry, or None."""
        return self._fresh(self.backend.get(key))

    async def astore(self, key: str, value: Any) -> None:
        if self._aset is not None:
            await self._aset(key, value, self.clock(), self.ttl)
        else:
            self.store(key, value)

    async def alookup(self, key: str) -> tuple[Any, float] | None:
        if self._aget is not None:
            return self._fresh(await self._aget(key))
        return self.lookup(key)

    def _fresh(self, entry: tuple[Any, float] | None) -> tuple[Any, float] | None:
        if entry is None:
            return None
        value, stored_at = entry
        age = max(0.0, self.clock() - stored_at)
        if age >= self.ttl:
            return None
        return value, age

    def __repr__(self) -> str:
        return f"CacheTier({self.name!r}, ttl={self.ttl:g}, backend={self.backend!r})"


class DegradedTier(_TierBase):
    """The last resort: a fixed answer, or ``answer(*args, **kwargs)`` if it is callable
    (sync, or async under ``acall``). It always answers unless ``answer`` raises."""

    kind = DEGRADED

    def __init__(self, answer: Any, name: str = "degraded") -> None:
        super().__init__()
        self.name = _check_name(name)
        if inspect.iscoroutine(answer) or inspect.isawaitable(answer):
            raise TypeError(
                f"degraded tier {name!r}: pass a value or a function, not an awaitable ({answer!r})"
            )
        self.answer = answer
        self.is_callable = callable(answer)

    def __repr__(self) -> str:
        return f"DegradedTier({self.answer!r:.60}, name={self.name!r})"
