"""Stack timeout, retry, breaker and fallback in one place, in a fixed, documented order.

From the outside in, a call passes::

    fallback → retry → breaker → quality check → timeout → your function

- the timeout bounds each attempt, so a hung attempt fails and can be retried;
- the quality check turns a bad answer into a failure the breaker sees;
- the breaker counts every attempt, and once it opens the retry stops (a
  :class:`~tripwise.CircuitBreakerOpen` is never retried);
- the fallback answers when everything inside failed, including a breaker rejection.

This is the order a hand-nested stack should have; :class:`Policy` builds it for you.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from tripwise.core.breaker import CircuitBreaker
from tripwise.policies._pipeline import Accept, ScoreFn, as_timeout, build, check_quality_args
from tripwise.policies.retry import Retry, _Attempts
from tripwise.policies.timeout import Timeout

F = TypeVar("F", bound=Callable[..., Any])

_NO_FALLBACK: Any = object()


class Policy:
    """A reusable stack of policies: ``@Policy(timeout=2, retry=Retry(3), breaker=b,
    fallback="n/a")`` or ``policy.call(fn, ...)`` / ``await policy.acall(fn, ...)``.

    ``fallback`` is a value or a function called with the call's arguments (its result, awaited
    if needed, is returned). Without a fallback the last error propagates. ``breaker`` must not
    have a fallback of its own (this policy's fallback is the one place for it).
    """

    def __init__(
        self,
        *,
        timeout: Timeout | float | None = None,
        retry: Retry | None = None,
        breaker: CircuitBreaker | None = None,
        fallback: Any = _NO_FALLBACK,
        accept: Accept | None = None,
        score_fn: ScoreFn | None = None,
        min_quality: float | None = None,
    ) -> None:
        self.timeout = as_timeout(timeout, "Policy")
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"Policy: retry must be a Retry, got {retry!r}")
        self.retry = retry
        if breaker is not None:
            if not isinstance(breaker, CircuitBreaker):
                raise TypeError(f"Policy: breaker must be a CircuitBreaker, got {breaker!r}")
            if breaker.fallback is not None:
                raise ValueError(
                    f"Policy: breaker {breaker.name!r} has its own fallback; pass the fallback "
                    "to the Policy instead so the order stays fallback → retry → breaker"
                )
        self.breaker = breaker
        if inspect.iscoroutine(fallback) or inspect.isawaitable(fallback):
            raise TypeError(
                "Policy: fallback must be a value or a function, not an awaitable; pass the "
                "async function itself"
            )
        self.fallback = fallback
        check_quality_args("Policy", accept, score_fn, min_quality)
        self.accept = accept
        self.score_fn = score_fn
        self.min_quality = min_quality
        self._guards: dict[Any, Callable[..., Any]] = {}

    def _build(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` behind this policy's timeout, quality check and breaker (no retry/fallback)."""
        return build(
            fn,
            timeout=self.timeout,
            breaker=self.breaker,
            accept=self.accept,
            score_fn=self.score_fn,
            min_quality=self.min_quality,
        )

    def _guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``_build(fn)``, cached per function for ``call``/``acall``."""
        guarded = self._guards.get(fn)
        if guarded is None:
            guarded = self._build(fn)
            if len(self._guards) < 256:  # policy.call(lambda: ...) must not grow without bound
                self._guards[fn] = guarded
        return guarded

    # ------------------------------------------------------------------ running

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` through the stack."""
        return self._run(self._guard(fn), args, kwargs)

    def _run(self, guarded: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        try:
            if self.retry is None:
                return guarded(*args, **kwargs)
            return self.retry._run(guarded, args, kwargs, _Attempts())
        except Exception:
            fb = self.fallback
            if fb is _NO_FALLBACK:
                raise
            return fb(*args, **kwargs) if callable(fb) else fb

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` through the stack."""
        return await self._arun(self._guard(fn), args, kwargs)

    async def _arun(self, guarded: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        try:
            if self.retry is None:
                return await guarded(*args, **kwargs)
            return await self.retry._arun(guarded, args, kwargs, _Attempts())
        except Exception:
            fb = self.fallback
            if fb is _NO_FALLBACK:
                raise
            if not callable(fb):
                return fb
            value = fb(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
            return value

    # ------------------------------------------------------------------ decorator

    def __call__(self, fn: F) -> F:
        """Decorate a sync or async function with the whole stack."""
        guarded = self._build(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self._arun(guarded, args, kwargs)

            async_wrapper.policy = self  # type: ignore[attr-defined]
            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self._run(guarded, args, kwargs)

        wrapper.policy = self  # type: ignore[attr-defined]
        return cast(F, wrapper)

    def __repr__(self) -> str:
        parts = []
        if self.timeout is not None:
            parts.append(f"timeout={self.timeout!r}")
        if self.retry is not None:
            parts.append(f"retry={self.retry!r}")
        if self.breaker is not None:
            parts.append(f"breaker={self.breaker.name!r}")
        if self.fallback is not _NO_FALLBACK:
            parts.append(f"fallback={self.fallback!r:.40}")
        return f"Policy({', '.join(parts)})"


def compose(
    *,
    timeout: Timeout | float | None = None,
    retry: Retry | None = None,
    breaker: CircuitBreaker | None = None,
    fallback: Any = _NO_FALLBACK,
    accept: Accept | None = None,
    score_fn: ScoreFn | None = None,
    min_quality: float | None = None,
) -> Policy:
    """Build a :class:`Policy` (same arguments): ``@compose(timeout=2, retry=Retry(3))``."""
    return Policy(
        timeout=timeout,
        retry=retry,
        breaker=breaker,
        fallback=fallback,
        accept=accept,
        score_fn=score_fn,
        min_quality=min_quality,
    )
