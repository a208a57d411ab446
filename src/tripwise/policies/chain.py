"""Fallback chains: try ordered tiers until one gives a good answer.

A call walks the tiers in order. A live tier answers unless its breaker rejects the call, the
call fails (after its retries), times out, or its answer fails the tier's quality check; then
the chain moves on. Every answer of a live tier is stored in the chain's cache tiers; a cache
tier serves a fresh stored answer with its age; a degraded tier always answers. Every call
returns a :class:`ChainResult` with the value and how it was obtained; when every tier fails,
:class:`~tripwise.policies.ChainExhausted` carries the per-tier errors.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from tripwise.core.clock import Clock, monotonic
from tripwise.core.errors import CircuitBreakerOpen
from tripwise.policies._checks import check_callable
from tripwise.policies.errors import CacheMiss, ChainExhausted
from tripwise.policies.retry import _Attempts
from tripwise.policies.tiers import CACHE, LIVE, CacheTier, DegradedTier, Tier, _TierBase

if TYPE_CHECKING:
    from tripwise.core.registry import Registry

_DEFAULT_REGISTRY: Any = object()
_NO_ERRORS: Mapping[str, BaseException] = MappingProxyType({})  # shared, read-only
_chains: weakref.WeakSet[FallbackChain] = weakref.WeakSet()
_chains_lock = threading.Lock()

KeyFn = Callable[..., str]


def all_chains() -> list[FallbackChain]:
    """Every live fallback chain in this process (for exporters and status views)."""
    with _chains_lock:
        return sorted(_chains, key=lambda c: c.name)


def default_key(*args: Any, **kwargs: Any) -> str:
    """The cache key of a call: a single string argument as is, else a repr of the arguments."""
    if not kwargs and len(args) == 1 and type(args[0]) is str:
        return args[0]
    if not kwargs:
        return repr(args)
    return repr((args, sorted(kwargs.items())))


class ChainResult(NamedTuple):
    """The answer of a chain call and how it was obtained (an immutable named tuple).

    - ``value``: the answer; ``tier``: name of the tier that gave it; ``tier_index``: its place.
    - ``fallback_used``: True when a tier other than the first answered.
    - ``attempts``: calls of live-tier functions that ran (retries included, breaker
      rejections not).
    - ``elapsed_ms``: time the chain call took, on the chain's clock.
    - ``errors``: the last error of each tier that failed before the answer.
    - ``cache_age_s``: age of a cached answer (None unless a cache tier answered).
    """

    value: Any
    tier: str
    tier_index: int
    attempts: int
    elapsed_ms: float
    errors: Mapping[str, BaseException]
    cache_age_s: float | None = None

    @property
    def fallback_used(self) -> bool:
        return self.tier_index > 0

    def metadata(self) -> dict[str, Any]:
        """Everything but the value, as plain JSON-friendly data."""
        return {
            "tier": self.tier,
            "fallback_used": self.tier_index > 0,
            "attempts": self.attempts,
            "elapsed_ms": self.elapsed_ms,
            "errors": {k: f"{type(v).__name__}: {v}" for k, v in self.errors.items()},
            "cache_age_s": self.cache_age_s,
        }


_new_result = tuple.__new__  # builds a ChainResult without the keyword-handling __new__


def _is_rejection(exc: BaseException) -> bool:
    # A breaker raises CircuitBreakerOpen *from* the error of a call that tripped it.
    return isinstance(exc, CircuitBreakerOpen) and exc.__cause__ is None


def _failed(
    tier: Tier | CacheTier | DegradedTier,
    exc: BaseException,
    errors: Mapping[str, BaseException],
) -> Mapping[str, BaseException]:
    """Count a failure of ``tier`` and note its error (the first one makes the dict)."""
    next(tier._failures)
    if errors is _NO_ERRORS:
        errors = {}
    errors[tier.name] = exc  # type: ignore[index]
    return errors


class FallbackChain:
    """Ordered tiers tried in turn: ``chain.call(*args)`` / ``await chain.acall(*args)``.

    ``key(*args, **kwargs) -> str`` names a call for the cache tiers (:func:`default_key` by
    default). ``clock`` times calls and drives the default tier breakers; ``registry`` is where
    the default tier breakers are registered (``None``: nowhere).
    """

    def __init__(
        self,
        tiers: Sequence[Tier | CacheTier | DegradedTier],
        *,
        name: str | None = None,
        key: KeyFn | None = None,
        clock: Clock | None = None,
        registry: Registry | None = _DEFAULT_REGISTRY,
    ) -> None:
        tiers = list(tiers)
        if not tiers:
            raise ValueError("a fallback chain needs at least one tier")
        seen: set[str] = set()
        for t in tiers:
            if not isinstance(t, _TierBase):
                raise TypeError(f"tiers must be Tier, CacheTier or DegradedTier, got {t!r}")
            if t.name in seen:
                raise ValueError(f"two tiers are named {t.name!r}; tier names must be unique")
            seen.add(t.name)
        if key is not None and not callable(key):
            raise TypeError(f"key must be callable, got {key!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty string or None, got {name!r}")
        self.name = name if name is not None else f"chain-{id(self):x}"
        check_callable("clock", clock, "a callable returning seconds")
        self._clock: Clock = clock if clock is not None else monotonic
        if registry is _DEFAULT_REGISTRY:
            from tripwise.core.registry import default_registry

            registry = default_registry
        self.registry: Registry | None = registry
        self.tiers: tuple[Tier | CacheTier | DegradedTier, ...] = tuple(tiers)
        for t in self.tiers:
            if isinstance(t, Tier):
                t._bind(self.name, clock, registry)
        self._key: KeyFn = key if key is not None else default_key
        self._caches = tuple(t for t in self.tiers if isinstance(t, CacheTier))
        self._has_async = any(
            (isinstance(t, Tier) and t.is_async)
            or (isinstance(t, DegradedTier) and inspect.iscoroutinefunction(t.answer))
            for t in self.tiers
        )
        head = self.tiers[0]
        self._fast_first: Tier | None = (
            head if isinstance(head, Tier) and head.retry is None else None
        )
        with _chains_lock:
            _chains.add(self)

    # ------------------------------------------------------------------ introspection

    def tier(self, name: str) -> Tier | CacheTier | DegradedTier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(f"fallback chain {self.name!r} has no tier named {name!r}")

    def usage(self) -> dict[str, int]:
        """How many calls each tier answered, in tier order."""
        return {t.name: t.usage for t in self.tiers}

    def stats(self) -> dict[str, Any]:
        """Per-tier usage, failures and breaker state, JSON-friendly."""
        tiers = {}
        for t in self.tiers:
            entry: dict[str, Any] = {
                "kind": ("live", "cache", "degraded")[t.kind],
                "usage": t.usage,
                "failures": t.failures,
            }
            if isinstance(t, Tier):
                entry["breaker"] = t.breaker.name if t.breaker is not None else None
                entry["state"] = t.breaker.state.value if t.breaker is not None else None
                entry["timeouts"] = t.timeout.timeouts if t.timeout is not None else 0
            tiers[t.name] = entry
        return {"name": self.name, "tiers": tiers}

    # ------------------------------------------------------------------ calls

    def call(self, *args: Any, **kwargs: Any) -> ChainResult:
        """Walk the tiers (sync tier functions only; use :meth:`acall` for async ones)."""
        if self._has_async:
            raise TypeError(
                f"fallback chain {self.name!r} has async tiers; use 'await chain.acall(...)'"
            )
        start = self._clock()
        first = self._fast_first
        if first is None:
            return self._walk(args, kwargs, start, 0, _NO_ERRORS, 0)
        # Fast path: a first live tier without retry answers (one call, no loop, no dict).
        try:
            value = first.guarded(*args, **kwargs)
        except Exception as exc:
            attempts = 0 if _is_rejection(exc) else 1
            return self._walk(args, kwargs, start, 1, _failed(first, exc, _NO_ERRORS), attempts)
        next(first._usage)  # the success path stays inline: it is the chain's hot path
        if self._caches:
            key = self._key(*args, **kwargs)
            for cache in self._caches:
                cache.store(key, value)
        return _new_result(
            ChainResult,
            (value, first.name, 0, 1, (self._clock() - start) * 1000.0, _NO_ERRORS, None),
        )

    def _answered(
        self,
        tier: Tier | CacheTier | DegradedTier,
        index: int,
        value: Any,
        attempts: int,
        start: float,
        errors: Mapping[str, BaseException],
        age: float | None,
    ) -> ChainResult:
        """Count the answer of ``tier`` and build the chain's result."""
        next(tier._usage)
        elapsed_ms = (self._clock() - start) * 1000.0
        result = (value, tier.name, index, attempts, elapsed_ms, errors, age)
        return _new_result(ChainResult, result)

    def _walk(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float,
        index: int,
        errors: Mapping[str, BaseException],
        attempts: int,
    ) -> ChainResult:
        """The general sync path: try the tiers from ``index`` on."""
        key: str | None = None
        for tier in self.tiers[index:]:
            kind = tier.kind
            age = None
            try:
                if kind is LIVE:
                    counter = _Attempts()
                    try:
                        value = tier.run(args, kwargs, counter)  # type: ignore[union-attr]
                    except Exception as exc:
                        attempts += counter.n - _is_rejection(exc)  # a rejection ran nothing
                        raise
                    attempts += counter.n
                    if self._caches:
                        key = self._key(*args, **kwargs)
                        for cache in self._caches:
                            cache.store(key, value)
                elif kind is CACHE:
                    if key is None:
                        key = self._key(*args, **kwargs)
                    hit = tier.lookup(key)  # type: ignore[union-attr]
                    if hit is None:
                        raise CacheMiss(key)
                    value, age = hit
                else:
                    answer = tier.answer  # type: ignore[union-attr]
                    value = answer(*args, **kwargs) if tier.is_callable else answer  # type: ignore[union-attr]
            except Exception as exc:
                errors = _failed(tier, exc, errors)
                index += 1
                continue
            return self._answered(tier, index, value, attempts, start, errors, age)
        raise ChainExhausted(self.name, dict(errors), attempts)

    async def acall(self, *args: Any, **kwargs: Any) -> ChainResult:
        """Walk the tiers, awaiting async tier functions (sync ones run inline)."""
        start = self._clock()
        errors: Mapping[str, BaseException] = _NO_ERRORS
        attempts = 0
        key: str | None = None
        index = 0
        for tier in self.tiers:
            kind = tier.kind
            age = None
            try:
                if kind is LIVE:
                    counter = _Attempts()
                    try:
                        value = await tier.arun(args, kwargs, counter)  # type: ignore[union-attr]
                    except Exception as exc:
                        attempts += counter.n - _is_rejection(exc)  # a rejection ran nothing
                        raise
                    attempts += counter.n
                    if self._caches:
                        key = self._key(*args, **kwargs)
                        for cache in self._caches:
                            await cache.astore(key, value)
                elif kind is CACHE:
                    if key is None:
                        key = self._key(*args, **kwargs)
                    hit = await tier.alookup(key)  # type: ignore[union-attr]
                    if hit is None:
                        raise CacheMiss(key)
                    value, age = hit
                else:
                    answer = tier.answer  # type: ignore[union-attr]
                    if tier.is_callable:  # type: ignore[union-attr]
                        value = answer(*args, **kwargs)
                        if inspect.isawaitable(value):
                            value = await value
                    else:
                        value = answer
            except Exception as exc:
                errors = _failed(tier, exc, errors)
                index += 1
                continue
            return self._answered(tier, index, value, attempts, start, errors, age)
        raise ChainExhausted(self.name, dict(errors), attempts)

    def __repr__(self) -> str:
        return f"FallbackChain({self.name!r}, tiers={[t.name for t in self.tiers]!r})"


def fallback_chain(
    tiers: Iterable[Tier | CacheTier | DegradedTier], **options: Any
) -> FallbackChain:
    """Shorthand for :class:`FallbackChain` (same arguments)."""
    return FallbackChain(list(tiers), **options)
