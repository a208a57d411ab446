"""Breaker-aware transports for httpx and httpx2 clients (sync and async).

``httpx.Client(transport=BreakerTransport(...))`` (or ``httpx2.Client``) puts one circuit
breaker per key (default: scheme + host + port) in front of every request:

1. The request's breaker admits it, or the request goes to the next fallback base URL, or to
   the final fallback answer, or gets the synthetic 503 of an open breaker.
2. The inner transport sends it. A status in ``failure_statuses`` (5xx and 429) or a transport
   error (connection refused / reset, timeouts) is a failure of that breaker; other answers are
   successes. Body checks, if any, read a 2xx non-streaming body and turn a low score into a
   quality failure.
3. With ``retry=`` (a :class:`tripwise.policies.Retry` or a number of attempts) failures are
   retried with backoff, honouring ``Retry-After``; this is the only retry loop (give the SDK
   on top ``max_retries=0``: :func:`tripwise.http.wrap_openai` does).
4. When the attempts run out, the next fallback hop is tried; the caller finally receives the
   upstream's last answer (a 500 stays a 500) or its transport error. Every response that is
   not returned to the caller is closed.

Streaming responses (SSE, NDJSON) are classified on their status and passed through unread.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.conditions import consecutive_failures
from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.registry import Registry
from tripwise.core.signals import report_quality
from tripwise.core.validation import check_number
from tripwise.http.errors import BodyCheckFailed, UpstreamFailure, tripped_by
from tripwise.http.routing import (
    DEFAULT_FAILURE_STATUSES,
    Fallback,
    KeyFn,
    check_fallback,
    check_statuses,
    is_stream,
    key_function,
    library_of,
    open_response,
    retry_after_seconds,
    rewrite,
    static_response,
)
from tripwise.policies.retry import Retry

logger = logging.getLogger("tripwise.http")

BodyCheck = Callable[[Any], Any]
_DEFAULT_REGISTRY: Any = object()


def _check_name(check: Any) -> str:
    return str(getattr(check, "name", None) or getattr(check, "__name__", None) or repr(check))


class _Core:
    """Configuration and breakers shared by the sync and async transports."""

    def __init__(
        self,
        inner: Any = None,
        *,
        trip_on: Any = None,
        half_open_after: float = 30.0,
        breaker_factory: Callable[[str], CircuitBreaker] | None = None,
        key: str | KeyFn = "origin",
        failure_statuses: Iterable[int] = DEFAULT_FAILURE_STATUSES,
        retry: Retry | int | None = None,
        fallback: Any = None,
        base_path: str = "",
        checks: Sequence[BodyCheck] = (),
        stream_checks: Sequence[Callable[[], Any]] = (),
        check_threshold: float = 0.5,
        name_prefix: str = "http",
        registry: Registry | None = _DEFAULT_REGISTRY,
    ) -> None:
        if inner is not None and not callable(getattr(inner, self._send_name, None)):
            raise TypeError(
                f"inner must be an {'async ' if self._send_name.startswith('handle_async') else ''}"
                f"httpx/httpx2 transport with {self._send_name}(), got {inner!r}"
            )
        self._inner = inner
        self._inners: dict[str, Any] = {}  # library name -> default inner transport
        if trip_on is not None and not hasattr(trip_on, "walk"):
            raise TypeError(f"trip_on must be a tripwise condition, got {trip_on!r}")
        self._trip_on = copy.deepcopy(trip_on)  # a pristine template: each breaker gets a copy
        self.half_open_after = check_number(
            "half_open_after", half_open_after, low=0.0, inclusive=False
        )
        if breaker_factory is not None and not callable(breaker_factory):
            raise TypeError(f"breaker_factory must be callable, got {breaker_factory!r}")
        self._factory = breaker_factory
        self._key = key_function(key)
        self.failure_statuses = check_statuses(failure_statuses)
        if isinstance(retry, int) and not isinstance(retry, bool):
            retry = Retry(retry)
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(
                f"retry must be a tripwise.policies.Retry or a number of attempts, got {retry!r}"
            )
        self.retry = retry
        self._hops, self._final = check_fallback(fallback)
        if not isinstance(base_path, str) or (base_path and not base_path.startswith("/")):
            raise ValueError(f"base_path must be '' or start with '/', got {base_path!r}")
        self.base_path = base_path.rstrip("/")
        for c in checks:
            if not callable(c):
                raise TypeError(f"checks must be callables (response) -> score, got {c!r}")
        self.checks = tuple(checks)
        for f in stream_checks:
            if not callable(f):
                raise TypeError(
                    "stream_checks must be factories () -> checker with feed(chunk) and "
                    f"close(), got {f!r}"
                )
        self.stream_checks = tuple(stream_checks)
        self.check_threshold = check_number(
            "check_threshold", check_threshold, low=0.0, inclusive=True
        )
        if not isinstance(name_prefix, str) or not name_prefix:
            raise ValueError(f"name_prefix must be a non-empty string, got {name_prefix!r}")
        self.name_prefix = name_prefix
        if registry is _DEFAULT_REGISTRY:
            from tripwise.core.registry import default_registry

            registry = default_registry
        self.registry = registry
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    _send_name = "handle_request"

    # ------------------------------------------------------------------ breakers

    def breaker(self, key: str) -> CircuitBreaker:
        """The breaker of ``key`` (created on first use)."""
        b = self._breakers.get(key)
        if b is None:
            with self._lock:  # first request of a key: one breaker even under a race
                b = self._breakers.get(key)
                if b is None:
                    b = self._breakers[key] = self._new_breaker(key)
        return b

    def breakers(self) -> dict[str, CircuitBreaker]:
        """Every breaker created so far, by key."""
        return dict(self._breakers)

    def _new_breaker(self, key: str) -> CircuitBreaker:
        if self._factory is not None:
            b = self._factory(key)
            if not isinstance(b, CircuitBreaker):
                raise TypeError(f"breaker_factory must return a CircuitBreaker, got {b!r}")
            return b
        name = f"{self.name_prefix}:{key}"

        def make(registry: Registry | None = None) -> CircuitBreaker:
            cond = (
                copy.deepcopy(self._trip_on)
                if self._trip_on is not None
                else consecutive_failures(5)
            )
            return CircuitBreaker(
                cond, name=name, half_open_after=self.half_open_after, registry=registry
            )

        if self.registry is None:
            return make()
        return self.registry.get_or_create(name, make)

    # ------------------------------------------------------------------ decisions

    def _classify(self, response: Any, breaker: CircuitBreaker) -> None:
        """Raise the failure a response stands for (inside the breaker's guarded call)."""
        status = response.status_code
        if status in self.failure_statuses:
            raise UpstreamFailure(status, response, retry_after_seconds(response.headers))

    def _run_checks(self, response: Any) -> None:
        worst = 1.0
        for check in self.checks:
            try:
                raw = check(response)
            except Exception as exc:  # a check that cannot read the body is a failed check
                raise BodyCheckFailed(_check_name(check), 0.0, response, repr(exc)) from exc
            score = float(raw) if raw is not None else 1.0
            worst = min(worst, score)
            if score < self.check_threshold:
                report_quality(max(0.0, min(1.0, score)))
                raise BodyCheckFailed(_check_name(check), score, response)
        report_quality(max(0.0, min(1.0, worst)))

    def _new_stream_checkers(self) -> list[Any]:
        return [factory() for factory in self.stream_checks]

    def _judge_chunk(self, checkers: list[Any], chunk: bytes | None) -> None:
        """Feed a stream chunk (None: the end) to the stream checkers; raise on a failure."""
        for checker in checkers:
            raw = checker.feed(chunk) if chunk is not None else checker.close()
            if raw is None:
                continue
            score = float(raw)
            if score < self.check_threshold:
                report_quality(max(0.0, min(1.0, score)))
                raise BodyCheckFailed(_check_name(checker), score, None, "in the stream")

    def _wants_body(self, response: Any) -> bool:
        return bool(self.checks) and 200 <= response.status_code < 300 and not is_stream(response)

    def _targets(self, request: Any) -> list[tuple[Any, Fallback | None]]:
        return [(request, None), *((None, hop) for hop in self._hops)]

    def _final_answer(self, lib: Any, request: Any) -> Any:
        final = self._final
        if final is None:
            return None
        if isinstance(final, tuple):
            return static_response(lib, request, final)
        return final(request)

    def _default_inner(self, lib: Any, asynchronous: bool) -> Any:
        inner = self._inners.get(lib.__name__)
        if inner is None:
            with self._lock:
                inner = self._inners.get(lib.__name__)
                if inner is None:
                    cls = lib.AsyncHTTPTransport if asynchronous else lib.HTTPTransport
                    inner = self._inners[lib.__name__] = cls()
        return inner

    def _admit(self, response: Any, request: Any, breaker: CircuitBreaker) -> bool:
        """Classify an upstream answer (raise its failure); True when its body is to be read
        and checked (``response.request`` is then set: checks may look at what was asked)."""
        self._classify(response, breaker)
        if not self._wants_body(response):
            return False
        response.request = request
        return True

    # ------------------------------------------------------------------ routing, sans I/O
    # The decisions of a request, shared by the sync and async transports: generators that
    # yield the I/O they need as (operation, target, breaker) and are sent its result (or
    # thrown its failure) by the transport's driver (_Steps and its _do).

    def _one_backend_answer(self, lib: Any, request: Any, raised: Exception) -> Any:
        """What the caller gets when the only backend failed: the open breaker's 503 or the
        upstream's own failing answer; any other error is raised."""
        exc = tripped_by(raised)
        if isinstance(exc, CircuitBreakerOpen):
            return open_response(lib, request, exc.name, exc.retry_after or 0.0)
        if isinstance(exc, (UpstreamFailure, BodyCheckFailed)) and exc.response is not None:
            return exc.response
        if exc is raised:
            raise raised
        raise exc from None

    def _route(self, lib: Any, request: Any) -> Generator[tuple[int, Any, Any], Any, Any]:
        """Each target in turn (the request, then each fallback hop), then the final answer."""
        body: bytes | None = None
        last: Any = None  # the last upstream answer that failed, kept for the caller
        last_error: BaseException | None = None
        open_breaker: CircuitBreakerOpen | None = None
        for req, hop in self._targets(request):
            if hop is not None:
                if body is None:
                    body = yield _READ, request, None
                req = rewrite(lib, request, self.base_path, hop, body)
            breaker = self.breaker(self._key(req))
            try:
                response = yield _SEND, req, breaker
            except Exception as raised:
                exc = tripped_by(raised)
                if isinstance(exc, CircuitBreakerOpen):
                    open_breaker = open_breaker or exc
                elif isinstance(exc, (UpstreamFailure, BodyCheckFailed)):
                    if last is not None:
                        yield _CLOSE, last, None
                    last, last_error = exc.response, None
                elif isinstance(exc, lib.TransportError):
                    last_error = exc
                else:
                    raise
                continue
            if last is not None:
                yield _CLOSE, last, None
            return response
        final = self._final_answer(lib, request)
        if final is not None:
            if last is not None:
                yield _CLOSE, last, None
            return (yield _FINAL, final, None)
        if last is not None:
            return last
        if last_error is not None:
            raise last_error
        assert open_breaker is not None
        return open_response(lib, request, open_breaker.name, open_breaker.retry_after or 0.0)


# the I/O a routing generator asks its driver for
_SEND = 0  # the attempts at (request, breaker): the answer, or the failure thrown back
_READ = 1  # the request's body
_CLOSE = 2  # close a discarded answer quietly
_FINAL = 3  # the final fallback answer (awaited if the async transport got an awaitable)


class _Steps:
    """Drives a routing generator: iterate for the I/O it asks for, and ``answer`` each with
    its result (or ``fail`` it with its error) before the next; ``result`` is the outcome."""

    __slots__ = ("_error", "_gen", "_value", "result")

    def __init__(self, gen: Generator[tuple[int, Any, Any], Any, Any]) -> None:
        self._gen = gen
        self._value: Any = None
        self._error: Exception | None = None
        self.result: Any = None

    def __iter__(self) -> _Steps:
        return self

    def __next__(self) -> tuple[int, Any, Any]:
        value, error = self._value, self._error
        self._value = self._error = None
        try:
            return self._gen.send(value) if error is None else self._gen.throw(error)
        except StopIteration as done:
            self.result = done.value
            raise StopIteration from None

    def answer(self, value: Any) -> None:
        self._value = value

    def fail(self, error: Exception) -> None:
        self._error = error


def _discarded(raised: BaseException) -> Any:
    """The upstream answer behind a failed attempt, or None: a retry discards it, and the last
    one reaches the caller already read (from ``exc.response``)."""
    exc = tripped_by(raised)
    if isinstance(exc, (UpstreamFailure, BodyCheckFailed)):
        return exc.response
    return None


def _read_and_close(raised: BaseException) -> None:
    response = _discarded(raised)
    if response is not None:
        response.read()
        response.close()


async def _aread_and_close(raised: BaseException) -> None:
    response = _discarded(raised)
    if response is not None:
        await response.aread()
        await response.aclose()


def _relayed(lib: Any, first: Any, body: Any) -> Any:
    """A response with the upstream's status, headers and extensions over a guarded body."""
    return lib.Response(
        first.status_code, headers=first.headers, stream=body, extensions=first.extensions
    )


_BODIES: dict[str, tuple[type, type]] = {}


def _body_classes(lib: Any) -> tuple[type, type]:
    """Response-body classes (sync, async) of ``lib`` over a guarded stream: the HTTP
    libraries insist that a body is their own ``SyncByteStream`` / ``AsyncByteStream``."""
    found = _BODIES.get(lib.__name__)
    if found is not None:
        return found

    class GuardedBody(lib.SyncByteStream):  # type: ignore[misc]
        def __init__(self, guarded: Any) -> None:
            self._guarded = guarded

        def __iter__(self) -> Any:
            yield from self._guarded

        def close(self) -> None:
            self._guarded.close()

    class AsyncGuardedBody(lib.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, guarded: Any) -> None:
            self._guarded = guarded

        async def __aiter__(self) -> Any:
            async for chunk in self._guarded:
                yield chunk

        async def aclose(self) -> None:
            await self._guarded.aclose()

    return _BODIES.setdefault(lib.__name__, (GuardedBody, AsyncGuardedBody))


_DRAIN_LIMIT = 64 * 1024


def _drainable(response: Any) -> bool:
    """A small body of known length: reading it keeps the connection in the pool (closing an
    unread body drops the connection, and the next request pays a new TCP handshake)."""
    length = response.headers.get("content-length")
    return bool(length and length.isdigit() and int(length) <= _DRAIN_LIMIT)


def _close_quietly(response: Any) -> None:
    try:
        if _drainable(response):
            response.read()
        response.close()
    except Exception:  # closing a discarded answer must never hide the real outcome
        logger.debug("closing a discarded response failed", exc_info=True)


async def _aclose_quietly(response: Any) -> None:
    try:
        if _drainable(response):
            await response.aread()
        await response.aclose()
    except Exception:
        logger.debug("closing a discarded response failed", exc_info=True)


class BreakerTransport(_Core):
    """A sync transport for ``httpx.Client`` / ``httpx2.Client`` with per-key breakers,
    status classification, optional retry, fallback and body checks (see the module doc)."""

    _send_name = "handle_request"

    def handle_request(self, request: Any) -> Any:
        lib = library_of(request)
        inner = self._inner if self._inner is not None else self._default_inner(lib, False)
        if not self._hops and self._final is None:  # one backend: the short path
            breaker = self.breaker(self._key(request))
            try:
                return self._attempts(inner, lib, request, breaker)
            except Exception as raised:
                return self._one_backend_answer(lib, request, raised)
        steps = _Steps(self._route(lib, request))
        for op in steps:
            try:
                steps.answer(self._do(inner, lib, op))
            except Exception as exc:  # noqa: PERF203 - the failure goes back to the router
                steps.fail(exc)
        return steps.result

    def _do(self, inner: Any, lib: Any, op: tuple[int, Any, Any]) -> Any:
        kind, target, breaker = op
        if kind == _SEND:
            return self._attempts(inner, lib, target, breaker)
        if kind == _READ:
            return target.read()
        if kind == _CLOSE:
            return _close_quietly(target)
        return target

    def _attempts(self, inner: Any, lib: Any, request: Any, breaker: CircuitBreaker) -> Any:
        if self.stream_checks:
            if self.retry is None:
                return self._send_checked_stream(inner, lib, request, breaker)
            return self.retry.call(self._send_checked_stream, inner, lib, request, breaker)
        if self.retry is None:
            return breaker.call(self._send, inner, request, breaker)
        return self.retry.call(self._retried_send, inner, request, breaker)

    def _send_checked_stream(
        self, inner: Any, lib: Any, request: Any, breaker: CircuitBreaker
    ) -> Any:
        """One guarded call that spans the whole streamed body: the breaker's outcome is the
        stream's (a stream check failing mid-way is a failure), not the headers'."""

        def attempt() -> Any:
            response = inner.handle_request(request)
            try:
                if self._admit(response, request, breaker):
                    response.read()
                    self._run_checks(response)
                yield response
                if is_stream(response):
                    checkers = self._new_stream_checkers()
                    for chunk in response.stream:
                        self._judge_chunk(checkers, chunk)
                        yield chunk
                    self._judge_chunk(checkers, None)
            finally:
                if is_stream(response):
                    response.close()

        guarded = breaker.stream(attempt)
        try:
            first = next(guarded)
        except StopIteration:  # pragma: no cover - attempt() always yields first
            raise RuntimeError("stream attempt ended before its response") from None
        except Exception as raised:
            _read_and_close(raised)
            raise
        if not is_stream(first):
            for _ in guarded:  # records the outcome (success)
                pass
            return first
        return _relayed(lib, first, _body_classes(lib)[0](guarded))

    def _retried_send(self, inner: Any, request: Any, breaker: CircuitBreaker) -> Any:
        try:
            return breaker.call(self._send, inner, request, breaker)
        except Exception as raised:
            _read_and_close(raised)
            raise

    def _send(self, inner: Any, request: Any, breaker: CircuitBreaker) -> Any:
        response = inner.handle_request(request)
        if self._admit(response, request, breaker):
            response.read()
            self._run_checks(response)
        return response

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
        for inner in self._inners.values():
            inner.close()

    def __enter__(self) -> BreakerTransport:
        if self._inner is not None:
            self._inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BreakerTransport(inner={self._inner!r}, breakers={len(self._breakers)})"


class AsyncBreakerTransport(_Core):
    """The async twin of :class:`BreakerTransport` for ``httpx.AsyncClient`` /
    ``httpx2.AsyncClient``: same arguments, same behaviour."""

    _send_name = "handle_async_request"

    async def handle_async_request(self, request: Any) -> Any:
        lib = library_of(request)
        inner = self._inner if self._inner is not None else self._default_inner(lib, True)
        if not self._hops and self._final is None:  # one backend: the short path
            breaker = self.breaker(self._key(request))
            try:
                return await self._attempts(inner, lib, request, breaker)
            except Exception as raised:
                return self._one_backend_answer(lib, request, raised)
        steps = _Steps(self._route(lib, request))
        for op in steps:
            try:
                steps.answer(await self._do(inner, lib, op))
            except Exception as exc:  # noqa: PERF203 - the failure goes back to the router
                steps.fail(exc)
        return steps.result

    async def _do(self, inner: Any, lib: Any, op: tuple[int, Any, Any]) -> Any:
        kind, target, breaker = op
        if kind == _SEND:
            return await self._attempts(inner, lib, target, breaker)
        if kind == _READ:
            return await target.aread()
        if kind == _CLOSE:
            return await _aclose_quietly(target)
        return (await target) if hasattr(target, "__await__") else target

    async def _attempts(self, inner: Any, lib: Any, request: Any, breaker: CircuitBreaker) -> Any:
        if self.stream_checks:
            if self.retry is None:
                return await self._send_checked_stream(inner, lib, request, breaker)
            return await self.retry.acall(self._send_checked_stream, inner, lib, request, breaker)
        if self.retry is None:
            return await breaker.acall(self._send, inner, request, breaker)
        return await self.retry.acall(self._retried_send, inner, request, breaker)

    async def _send_checked_stream(
        self, inner: Any, lib: Any, request: Any, breaker: CircuitBreaker
    ) -> Any:
        async def attempt() -> Any:
            response = await inner.handle_async_request(request)
            try:
                if self._admit(response, request, breaker):
                    await response.aread()
                    self._run_checks(response)
                yield response
                if is_stream(response):
                    checkers = self._new_stream_checkers()
                    async for chunk in response.stream:
                        self._judge_chunk(checkers, chunk)
                        yield chunk
                    self._judge_chunk(checkers, None)
            finally:
                if is_stream(response):
                    await response.aclose()

        guarded = breaker.stream(attempt)
        try:
            first = await guarded.__anext__()
        except Exception as raised:
            await _aread_and_close(raised)
            raise
        if not is_stream(first):
            async for _ in guarded:
                pass
            return first
        return _relayed(lib, first, _body_classes(lib)[1](guarded))

    async def _retried_send(self, inner: Any, request: Any, breaker: CircuitBreaker) -> Any:
        try:
            return await breaker.acall(self._send, inner, request, breaker)
        except Exception as raised:
            await _aread_and_close(raised)
            raise

    async def _send(self, inner: Any, request: Any, breaker: CircuitBreaker) -> Any:
        response = await inner.handle_async_request(request)
        if self._admit(response, request, breaker):
            await response.aread()
            self._run_checks(response)
        return response

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()
        for inner in self._inners.values():
            await inner.aclose()

    async def __aenter__(self) -> AsyncBreakerTransport:
        if self._inner is not None:
            await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncBreakerTransport(inner={self._inner!r}, breakers={len(self._breakers)})"
