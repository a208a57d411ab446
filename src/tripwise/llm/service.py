"""``LLMService``: a cloud (or any) backend, one retry with backoff, then a local model.

The default chain (all of it configurable)::

    attempt 0  primary, 10 s timeout
    wait 2 s
    attempt 1  primary again, 20 s timeout
    wait 5 s
    attempt 2  fallback (local) model, 30 s timeout      (only when a fallback is configured)

Each endpoint has a breaker (from a :class:`~tripwise.policies.HealthChecker`: opens after
``failure_threshold`` failures in a row, probes after ``recovery_timeout_seconds``). An
attempt whose breaker is open is skipped without waiting; when every attempt is skipped the
call fails fast with :class:`CircuitBreakerError`. Transport errors and failed output checks
move the call on; a caller error (a 4xx other than 408/429) is raised at once.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.states import State
from tripwise.http.errors import tripped_by
from tripwise.llm.client import LLMClient, OllamaClient, OpenAIClient
from tripwise.llm.errors import (
    AllAttemptsFailed,
    CircuitBreakerError,
    LLMHTTPError,
    LLMTimeout,
    OutputCheckFailed,
)
from tripwise.llm.response import Attempt, LLMResponse, StreamEvent
from tripwise.llm.streams import AsyncChatStream, ChatStream, guard_stream
from tripwise.llm.timeouts import Timeouts
from tripwise.policies.health import HealthChecker

DEFAULT_TIMEOUTS = (10.0, 20.0, 30.0)
DEFAULT_WAITS = (2.0, 5.0)


def _outcome(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, OutputCheckFailed):
        return "quality", exc.check
    if isinstance(exc, LLMTimeout):
        return "timeout", exc.kind
    if isinstance(exc, LLMHTTPError):
        return "http", str(exc.status_code)
    if isinstance(exc, CircuitBreakerOpen):
        return "open", exc.name
    return "transport", type(exc).__name__


def _fatal(exc: BaseException) -> bool:
    """A caller's mistake: the next backend would refuse it just the same."""
    return isinstance(exc, LLMHTTPError) and not exc.retriable


class _CallerError:
    """A caller's 4xx carried out of the guarded call, so the breaker does not count it."""

    __slots__ = ("error",)

    def __init__(self, error: LLMHTTPError) -> None:
        self.error = error

    @staticmethod
    def carried(exc: LLMHTTPError) -> _CallerError:
        """``exc`` carried out, if it is a caller's mistake; raised on otherwise."""
        if exc.retriable:
            raise exc
        return _CallerError(exc)

    @staticmethod
    def unwrap(result: Any) -> LLMResponse:
        """The guarded call's answer, or the caller's error it carried out, raised now."""
        if isinstance(result, _CallerError):
            raise result.error
        return cast(LLMResponse, result)


def _unless_caller_error(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except LLMHTTPError as exc:
        return _CallerError.carried(exc)


async def _aunless_caller_error(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return await fn(*args)
    except LLMHTTPError as exc:
        return _CallerError.carried(exc)


def _numbers(name: str, values: Any, n: int, *, zero_ok: bool) -> tuple[float, ...]:
    try:
        out = tuple(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of {n} numbers, got {values!r}") from None
    if len(out) != n:
        raise ValueError(f"{name} must have {n} values, got {values!r}")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{name} must hold finite numbers, got {v!r}")
        if v < 0 or (v == 0 and not zero_ok):
            raise ValueError(f"{name} must hold numbers {'>= 0' if zero_ok else '> 0'}, got {v!r}")
    return tuple(float(v) for v in out)


class _Step:
    """One attempt of a call through the chain: the client, its breaker, its timeouts and the
    wait before it. As a ``with`` block around the attempt it records a failure: the error the
    caller is owed goes on up, any other is swallowed and the chain goes on."""

    def __init__(
        self,
        run: _Run,
        n: int,
        client: LLMClient,
        breaker: CircuitBreaker | None,
        t: Timeouts,
        delay: float,
    ) -> None:
        self.run = run
        self.n = n
        self.client = client
        self.breaker = breaker
        self.t = t
        self.delay = delay
        self.sent = False  # a stream delivered an event: a failure now reaches the caller
        self.start = 0.0
        self.inner: dict[str, Any] = {}  # where a stream's checked response lands
        self.failed = False  # the attempt failed and was recorded: on to the next one

    def __enter__(self) -> _Step:
        self.start = time.perf_counter()
        return self

    def __exit__(self, kind: object, raised: BaseException | None, tb: object) -> bool:
        if not isinstance(raised, Exception):
            return False
        error = self.run.failed(self.n, self.client, raised, self.start, committed=self.sent)
        if error is None:
            self.failed = True
            return True
        raise error from (None if error is raised else raised)

    def chat(self, msgs: Any, params: dict[str, Any]) -> LLMResponse:
        raw = self.client._chat_raw
        if self.breaker is None:
            return raw(msgs, params, self.t, False)
        return _CallerError.unwrap(
            self.breaker.call(_unless_caller_error, raw, msgs, params, self.t, False)
        )

    async def achat(self, msgs: Any, params: dict[str, Any]) -> LLMResponse:
        raw = self.client._achat_raw
        if self.breaker is None:
            return await raw(msgs, params, self.t, False)
        return _CallerError.unwrap(
            await self.breaker.acall(_aunless_caller_error, raw, msgs, params, self.t, False)
        )

    def events(self, raw: Any, msgs: Any, params: dict[str, Any], hold: bool | int) -> Any:
        """The guarded event stream of ``raw`` (``_stream_raw`` or ``_astream_raw``)."""
        return guard_stream(self.breaker, raw, msgs, params, self.t, False, hold, self.inner)

    def succeeded(self, r: LLMResponse | None = None) -> LLMResponse:
        """Record the success; ``r`` (default: the stream's checked response) with the call's
        metadata."""
        answer = r if r is not None else self.inner["response"]
        return self.run.succeeded(answer, self.n, self.client, self.start)


class _Run:
    """The bookkeeping of one call through the chain (the same for complete, stream and their
    async twins): which attempts run, with which timeout, after which wait; what happened."""

    def __init__(self, service: LLMService, timeout: float | None) -> None:
        self.service = service
        self.timeout = timeout
        self.attempts: list[Attempt] = []
        self.opened: list[CircuitBreakerOpen] = []
        self.last: BaseException | None = None
        self.last_client: LLMClient | None = None

    def steps(self) -> Iterator[_Step]:
        """Each attempt to run; an attempt whose breaker is open, or whose backend asked for
        too long a pause, is skipped at once."""
        s = self.service
        for n, client, limit, wait in s._plan():
            breaker = s._breaker(client)
            if breaker is not None and s._is_open(breaker):
                self.opened.append(s._open_error(breaker))
                self.attempts.append(Attempt(n, client.name, "open", breaker.name))
                continue
            delay = s._delay(wait, self.attempts, self.last, self.last_client, client)
            if delay is None:  # the backend asked for a longer pause than max_retry_after
                self.attempts.append(Attempt(n, client.name, "skipped", "retry-after"))
                continue
            t = client._timeouts(self.timeout if self.timeout is not None else limit)
            yield _Step(self, n, client, breaker, t, delay)

    def failed(
        self, n: int, client: LLMClient, raised: Exception, start: float, committed: bool = False
    ) -> Exception | None:
        """Record a failed attempt. Returns the error to raise now (a caller's mistake, or a
        stream that already delivered text), None to go on."""
        exc = tripped_by(raised)
        client.stats.count(exc)
        kind, detail = _outcome(exc)
        self.attempts.append(
            Attempt(n, client.name, kind, detail, (time.perf_counter() - start) * 1000.0)
        )
        if committed or _fatal(exc):
            return exc if isinstance(exc, Exception) else raised
        if isinstance(exc, CircuitBreakerOpen):
            self.opened.append(exc)
        else:
            self.last, self.last_client = exc, client
        return None

    def succeeded(self, r: LLMResponse, n: int, client: LLMClient, start: float) -> LLMResponse:
        client.stats.count(None)
        ms = (time.perf_counter() - start) * 1000.0
        return self.service._done(r, n, client, self.attempts, ms)

    def exhausted(self) -> Exception:
        """The error of a call whose attempts all failed or were skipped."""
        if self.last is None:
            return self.service._all_open(self.attempts, self.opened)
        err = AllAttemptsFailed(self.attempts)
        err.__cause__ = self.last
        return err


class LLMService:
    """The seed's LLM service: ``complete(prompt)`` with retry, backoff, local fallback,
    breakers and response metadata (``content``, ``model``, ``usage``, ``response_time_ms``,
    ``fallback_used``, ``attempt``, plus ``backend``, ``finish_reason``, ``quality``,
    ``attempts``).

    - ``base_url``, ``model``, ``api_key``: the primary backend; ``api`` is ``"openai"``
      (OpenAI-compatible, the default) or ``"ollama"`` (native API).
    - ``fallback_base_url``, ``fallback_model``, ``fallback_api_key``, ``fallback_api``: the
      local model of attempt 2 (default api ``"ollama"``-compatible ``/v1``: ``"openai"``).
    - ``timeouts``: per attempt (default 10, 20, 30 s); ``waits``: before attempts 1 and 2
      (default 2, 5 s); ``jitter``: a share in [0, 1] that spreads each wait by ± that much.
      Before a retry of the same backend the wait is at least its ``Retry-After``; one longer
      than ``max_retry_after`` (60 s) skips the retry and goes on to the fallback.
    - ``enable_circuit_breaker``: guard each endpoint with the breaker of ``health_checker``
      (default :func:`tripwise.policies.get_health_checker`), registered with
      ``failure_threshold`` and ``recovery_timeout_seconds`` unless already registered.
    - ``checks``: output checks of every answer (see :mod:`tripwise.llm.checks`).
    - ``sleep`` / ``async_sleep`` / ``rng``: injectable for tests.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:11434/v1",
        model: str = "llama3.2",
        *,
        api_key: str | None = None,
        api: str = "openai",
        enable_circuit_breaker: bool = True,
        fallback_base_url: str | None = None,
        fallback_model: str | None = None,
        fallback_api_key: str | None = None,
        fallback_api: str = "openai",
        timeouts: Sequence[float] = DEFAULT_TIMEOUTS,
        waits: Sequence[float] = DEFAULT_WAITS,
        jitter: float = 0.0,
        max_retry_after: float = 60.0,
        checks: Any = None,
        health_checker: HealthChecker | None = None,
        failure_threshold: int = 3,
        recovery_timeout_seconds: float = 60.0,
        params: dict[str, Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        async_sleep: Callable[[float], Any] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(enable_circuit_breaker, bool):
            raise TypeError(
                f"enable_circuit_breaker must be True or False, got {enable_circuit_breaker!r}"
            )
        self.timeouts = _numbers("timeouts", timeouts, 3, zero_ok=False)
        self.waits = _numbers("waits", waits, 2, zero_ok=True)
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be a number in [0, 1], got {jitter!r}")
        self.jitter = float(jitter)
        if (
            isinstance(max_retry_after, bool)
            or not isinstance(max_retry_after, (int, float))
            or not max_retry_after >= 0
        ):
            raise ValueError(f"max_retry_after must be a number >= 0, got {max_retry_after!r}")
        self.max_retry_after = float(max_retry_after)
        self.primary = self._client(api, base_url, model, api_key, checks, params, "api")
        self.fallback: LLMClient | None = None
        if fallback_base_url is not None:
            self.fallback = self._client(
                fallback_api,
                fallback_base_url,
                fallback_model or model,
                fallback_api_key,
                checks,
                params,
                "fallback_api",
            )
        elif fallback_model is not None:
            raise ValueError("fallback_model needs a fallback_base_url")
        self.enable_circuit_breaker = enable_circuit_breaker
        self.failure_threshold = failure_threshold
        self.recovery_timeout_seconds = recovery_timeout_seconds
        if health_checker is None and enable_circuit_breaker:
            from tripwise.policies.health import get_health_checker

            health_checker = get_health_checker()
        if health_checker is not None and not isinstance(health_checker, HealthChecker):
            raise TypeError(f"health_checker must be a HealthChecker, got {health_checker!r}")
        self.health_checker = health_checker
        if enable_circuit_breaker:
            assert health_checker is not None
            for client in self._clients():
                self._register(client)
        if not callable(sleep) or not callable(async_sleep):
            raise TypeError("sleep and async_sleep must be callables")
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._rng = rng if rng is not None else random.Random()

    # ------------------------------------------------------------------ construction

    @classmethod
    def with_local(
        cls,
        model: str = "llama3.2",
        base_url: str = "http://localhost:11434/v1",
        *,
        cloud_base_url: str | None = None,
        cloud_model: str | None = None,
        cloud_api_key: str | None = None,
        **kwargs: Any,
    ) -> LLMService:
        """A service for a local (Ollama) model; with ``cloud_base_url`` the cloud backend is
        the primary and the local model is the fallback of attempt 2."""
        if cloud_base_url is None:
            return cls(base_url=base_url, model=model, **kwargs)
        return cls(
            base_url=cloud_base_url,
            model=cloud_model or model,
            api_key=cloud_api_key,
            fallback_base_url=base_url,
            fallback_model=model,
            **kwargs,
        )

    @staticmethod
    def _client(
        api: str,
        base_url: str,
        model: str,
        api_key: str | None,
        checks: Any,
        params: dict[str, Any] | None,
        label: str,
    ) -> LLMClient:
        kwargs: dict[str, Any] = {
            "api_key": api_key,
            "checks": checks,
            "breaker": False,  # the service guards with the endpoint's breaker itself
            "params": params,
            "name": base_url.rstrip("/"),
        }
        if api == "openai":
            return OpenAIClient(base_url, model, **kwargs)
        if api == "ollama":
            return OllamaClient(base_url, model, **kwargs)
        raise ValueError(f"{label} must be 'openai' or 'ollama', got {api!r}")

    def _clients(self) -> list[LLMClient]:
        return [self.primary] + ([self.fallback] if self.fallback is not None else [])

    @property
    def endpoints(self) -> list[str]:
        """The endpoints (base URLs) whose breakers guard this service."""
        return [c.name for c in self._clients()]

    def _register(self, client: LLMClient) -> None:
        checker = self.health_checker
        assert checker is not None
        if client.name in checker.endpoints():
            return
        checker.register_endpoint(
            client.name,
            self.failure_threshold,
            self.recovery_timeout_seconds,
            **self._probe_args(client),
        )

    def _probe_args(self, client: LLMClient) -> dict[str, Any]:
        """How the health checker probes ``client``'s endpoint: its own health URL."""
        return {"health_url": client.base_url + client.health_path, "probe": client.ahealth}

    def _breaker(self, client: LLMClient) -> CircuitBreaker | None:
        if not self.enable_circuit_breaker or self.health_checker is None:
            return None
        try:
            return self.health_checker.breaker(client.name)
        except KeyError:  # unregistered meanwhile: register again with our defaults
            self._register(client)
            return self.health_checker.breaker(client.name)

    def _plan(self) -> list[tuple[int, LLMClient, float, float]]:
        """(attempt number, client, timeout, wait before it)."""
        plan = [
            (0, self.primary, self.timeouts[0], 0.0),
            (1, self.primary, self.timeouts[1], self.waits[0]),
        ]
        if self.fallback is not None:
            plan.append((2, self.fallback, self.timeouts[2], self.waits[1]))
        return plan

    def _wait(self, seconds: float) -> float:
        if seconds <= 0 or not self.jitter:
            return seconds
        return max(0.0, seconds * (1.0 + self.jitter * (2.0 * self._rng.random() - 1.0)))

    def _delay(
        self,
        wait: float,
        attempts: list[Attempt],
        last: BaseException | None,
        last_client: LLMClient | None,
        client: LLMClient,
    ) -> float | None:
        """Seconds to wait before the next attempt: the configured wait (with jitter), at
        least the ``Retry-After`` the same backend just sent; None to skip the attempt when
        that is longer than ``max_retry_after``."""
        if not attempts:
            return 0.0
        delay = self._wait(wait)
        asked = getattr(last, "retry_after", None) if last_client is client else None
        if isinstance(asked, (int, float)) and asked > 0:
            if asked > self.max_retry_after:
                return None
            delay = max(delay, float(asked))
        return delay

    @staticmethod
    def _is_open(breaker: CircuitBreaker) -> bool:
        return breaker.state is State.OPEN and breaker.retry_after() > 0

    def _all_open(
        self, attempts: list[Attempt], open_errors: list[CircuitBreakerOpen]
    ) -> CircuitBreakerError:
        names = tuple(dict.fromkeys(e.name for e in open_errors))
        retry = min((e.retry_after or 0.0 for e in open_errors), default=0.0)
        trips = max((e.trip_count for e in open_errors), default=0)
        err = CircuitBreakerError(names[0] if names else "llm", State.OPEN, trips, retry, names)
        err.attempts = attempts  # type: ignore[attr-defined]
        return err

    @staticmethod
    def _open_error(breaker: CircuitBreaker) -> CircuitBreakerOpen:
        return CircuitBreakerOpen(
            breaker.name, breaker.state, breaker.trip_count, breaker.retry_after()
        )

    def _done(
        self, r: LLMResponse, n: int, client: LLMClient, attempts: list[Attempt], ms: float
    ) -> LLMResponse:
        attempts.append(Attempt(n, client.name, "ok", "", ms))
        r.attempt = n
        r.fallback_used = client is not self.primary
        r.attempts = attempts
        return r

    # ------------------------------------------------------------------ sync

    def complete(
        self,
        prompt: str | None = None,
        *,
        messages: list[Any] | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> LLMResponse:
        """Answer ``prompt`` (or ``messages``) through the chain. ``timeout`` replaces the
        timeout of every attempt. Raises :class:`CircuitBreakerError` when every endpoint is
        open, :class:`AllAttemptsFailed` when every attempt failed."""
        msgs = LLMClient._messages(prompt, messages)
        run = _Run(self, timeout)
        for step in run.steps():
            if step.delay:
                self._sleep(step.delay)
            with step:
                r = step.chat(msgs, params)
            if not step.failed:
                return step.succeeded(r)
        raise run.exhausted()

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: list[Any] | None = None,
        timeout: float | None = None,
        hold: bool | int = False,
        **params: Any,
    ) -> ChatStream:
        """Stream the answer. Until the first event reaches the caller (or, with ``hold``,
        until the held text passed the checks) a failing attempt moves to the next one
        unseen; after that a failure raises from the iterator."""
        msgs = LLMClient._messages(prompt, messages)
        holder: dict[str, Any] = {}
        return ChatStream(self._stream_gen(msgs, timeout, hold, params, holder), holder)

    def _stream_gen(
        self,
        msgs: Any,
        timeout: float | None,
        hold: bool | int,
        params: dict[str, Any],
        holder: dict[str, Any],
    ) -> Iterator[StreamEvent]:
        run = _Run(self, timeout)
        for step in run.steps():
            if step.delay:
                self._sleep(step.delay)
            with step:
                for event in step.events(step.client._stream_raw, msgs, params, hold):
                    step.sent = True
                    yield event
            if not step.failed:
                holder["response"] = step.succeeded()
                return
        raise run.exhausted()

    # ------------------------------------------------------------------ async

    async def acomplete(
        self,
        prompt: str | None = None,
        *,
        messages: list[Any] | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> LLMResponse:
        """The async twin of :meth:`complete`."""
        msgs = LLMClient._messages(prompt, messages)
        run = _Run(self, timeout)
        for step in run.steps():
            if step.delay:
                await self._async_sleep(step.delay)
            with step:
                r = await step.achat(msgs, params)
            if not step.failed:
                return step.succeeded(r)
        raise run.exhausted()

    def astream(
        self,
        prompt: str | None = None,
        *,
        messages: list[Any] | None = None,
        timeout: float | None = None,
        hold: bool | int = False,
        **params: Any,
    ) -> AsyncChatStream:
        """The async twin of :meth:`stream`."""
        msgs = LLMClient._messages(prompt, messages)
        holder: dict[str, Any] = {}
        return AsyncChatStream(self._astream_gen(msgs, timeout, hold, params, holder), holder)

    async def _astream_gen(
        self,
        msgs: Any,
        timeout: float | None,
        hold: bool | int,
        params: dict[str, Any],
        holder: dict[str, Any],
    ) -> AsyncIterator[StreamEvent]:
        run = _Run(self, timeout)
        for step in run.steps():
            if step.delay:
                await self._async_sleep(step.delay)
            with step:
                async for event in step.events(step.client._astream_raw, msgs, params, hold):
                    step.sent = True
                    yield event
            if not step.failed:
                holder["response"] = step.succeeded()
                return
        raise run.exhausted()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        for c in self._clients():
            c.close()

    async def aclose(self) -> None:
        for c in self._clients():
            await c.aclose()

    def __repr__(self) -> str:
        fb = f", fallback={self.fallback.name!r}" if self.fallback is not None else ""
        return f"LLMService({self.primary.name!r}, model={self.primary.model!r}{fb})"
