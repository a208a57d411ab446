"""Clients for OpenAI-compatible chat completions and Ollama's native API, sync and async,
JSON and streaming, whose output checks count as outcomes of the backend's breaker.

A call raises a transport error (:class:`LLMTransportError`, :class:`LLMTimeout`,
:class:`LLMHTTPError`) or, when the answer fails a check, :class:`OutputCheckFailed` (a
quality failure); both are counted by the backend's breaker (a backend that keeps answering
empty opens). A stream is checked incrementally; with ``hold=True`` nothing reaches the caller
until the whole answer passed (``hold=N`` holds the first N characters), so a caller can still
fail over invisibly.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.conditions import consecutive_failures
from tripwise.core.signals import report_quality
from tripwise.http.errors import tripped_by
from tripwise.llm.checks import CheckSuite, build_checks
from tripwise.llm.errors import (
    LLMHTTPError,
    LLMTimeout,
    LLMTransportError,
    OutputCheckFailed,
    counts_as_backend_failure,
)
from tripwise.llm.response import LLMResponse, StreamEvent
from tripwise.llm.streams import AsyncChatStream, ChatStream, guard_stream
from tripwise.llm.timeouts import Timeouts
from tripwise.llm.wire import OllamaWire, OpenAIWire, request_expectations

_DEFAULT_REGISTRY: Any = object()


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError("tripwise.llm needs httpx: pip install 'tripwise[llm]'") from None
    return httpx


def _retry_after(headers: Any) -> float | None:
    from tripwise.http.routing import retry_after_seconds

    return retry_after_seconds(headers)


class ClientStats:
    """Outcome counters of one client: transport and quality failures apart."""

    __slots__ = ("_lock", "by_check", "ok", "quality_failures", "rejected", "transport_failures")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ok = self.transport_failures = self.quality_failures = self.rejected = 0
        self.by_check: dict[str, int] = {}

    def count(self, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None:
                self.ok += 1
            elif isinstance(exc, OutputCheckFailed):
                self.quality_failures += 1
                self.by_check[exc.check] = self.by_check.get(exc.check, 0) + 1
            elif isinstance(exc, (LLMTransportError, LLMHTTPError)):
                self.transport_failures += 1

    def __repr__(self) -> str:
        return (
            f"ClientStats(ok={self.ok}, transport_failures={self.transport_failures}, "
            f"quality_failures={self.quality_failures}, by_check={self.by_check})"
        )


class _Counted:
    """Counts the outcome of the block it spans in ``stats``, and raises the failure behind a
    breaker's CircuitBreakerOpen (the caller is owed that error). One ``with`` serves sync
    calls, async calls and streams alike."""

    __slots__ = ("_stats",)

    def __init__(self, stats: ClientStats) -> None:
        self._stats = stats

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, raised: BaseException | None, tb: object) -> None:
        if raised is None:
            self._stats.count(None)
        elif isinstance(raised, Exception):  # not GeneratorExit or a cancellation
            exc = tripped_by(raised)
            self._stats.count(exc)
            if exc is not raised:
                raise exc from raised


class _StreamParser:
    """The I/O-free part of a streamed answer, shared by the sync and async streams: frames out
    of the body's chunks, output checks as the text grows, events held back while ``hold``
    says so."""

    __slots__ = ("_acc", "_checker", "_held", "_hold")

    def __init__(self, client: LLMClient, hold: bool | int) -> None:
        self._acc = client.wire.accumulator()
        self._checker = client.checks.stream_checker()
        self._hold = hold
        self._held: list[StreamEvent] | None = [] if hold else None

    @property
    def done(self) -> bool:
        """The answer's last frame was read."""
        return bool(self._acc.done)

    def events(self, chunk: bytes) -> Iterator[StreamEvent]:
        """The events of ``chunk`` the caller may see now; OutputCheckFailed at a failing check."""
        acc, checker = self._acc, self._checker
        for frame in acc.frames(chunk):
            delta, raw = acc.feed(frame)
            failure = checker.feed(delta)
            if failure is not None:
                report_quality(0.0)
                raise OutputCheckFailed(failure.check, failure.reason, failure.score)
            event = StreamEvent(delta, raw)
            if self._held is None:
                yield event
            else:
                self._held.append(event)
                if self._hold is not True and len(checker.text) >= self._hold:
                    yield from self._held
                    self._held = None

    def response(self) -> LLMResponse:
        return cast(LLMResponse, self._acc.response())

    def rest(self) -> list[StreamEvent]:
        """The events still held at the end (the answer passed its checks)."""
        held, self._held = self._held or [], None
        return held


_END = object()


class LLMClient:
    """Shared machinery of :class:`OpenAIClient` and :class:`OllamaClient`.

    - ``base_url``, ``model``: the backend; ``api_key`` is sent as a Bearer token.
    - ``timeouts``: a :class:`Timeouts`, a number (the total) or a dict.
    - ``checks``: output checks (see :func:`tripwise.llm.checks.build_checks`); None = defaults.
    - ``breaker``: True (a breaker that opens after 5 failures in a row, probes after 30 s),
      False/None (none) or your own :class:`~tripwise.CircuitBreaker`.
    - ``http_client`` / ``async_http_client``: httpx clients to use (e.g. with a
      :class:`tripwise.http.BreakerTransport`); made on first use otherwise.
    - ``params``: default request parameters (temperature, max_tokens, ...).
    """

    wire_class: Any = OpenAIWire

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        name: str | None = None,
        timeouts: Timeouts | float | dict[str, Any] | None = None,
        checks: Any = None,
        breaker: CircuitBreaker | bool | None = True,
        http_client: Any = None,
        async_http_client: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        registry: Any = _DEFAULT_REGISTRY,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name if name is not None else f"{self.base_url}#{model}"
        self._totals: dict[Any, Timeouts] = {}
        self.timeouts = Timeouts.of(timeouts)
        self.checks: CheckSuite = build_checks(checks)
        self.headers = dict(headers or {})
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.params = dict(params or {})
        self.wire = self._make_wire()
        if breaker is True:
            breaker = self._default_breaker(registry)
        elif breaker is False:
            breaker = None
        elif breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise TypeError(f"breaker must be True, False or a CircuitBreaker, got {breaker!r}")
        self.breaker: CircuitBreaker | None = breaker
        self._http = http_client
        self._ahttp = async_http_client
        self._own_http = http_client is None
        self._own_ahttp = async_http_client is None
        self.stats = ClientStats()
        self._urls: dict[bool, str] = {}
        self._http_timeouts: dict[tuple[Timeouts, bool], Any] = {}

    def _default_breaker(self, registry: Any) -> CircuitBreaker:
        """Opens after 5 failures in a row, probes after 30 s; clients of one backend (same
        name) in one registry share it."""
        name = f"llm:{self.name}"

        def make(registry: Any = None) -> CircuitBreaker:
            return CircuitBreaker(
                consecutive_failures(5),
                name=name,
                half_open_after=30.0,
                exception_predicate=counts_as_backend_failure,
                registry=registry,
            )

        if registry is _DEFAULT_REGISTRY:
            from tripwise.core.registry import default_registry

            registry = default_registry
        if registry is None:
            return make()
        return cast(CircuitBreaker, registry.get_or_create(name, make))

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts_value

    @timeouts.setter
    def timeouts(self, value: Timeouts | float | dict[str, Any] | None) -> None:
        self._timeouts_value = Timeouts.of(value)
        self._totals.clear()

    def _make_wire(self) -> Any:
        return self.wire_class(self.name)

    # ------------------------------------------------------------------ plumbing

    def _client(self) -> Any:
        if self._http is None:
            self._http = _httpx().Client(headers=self.headers)
        return self._http

    def _aclient(self) -> Any:
        if self._ahttp is None:
            self._ahttp = _httpx().AsyncClient(headers=self.headers)
        return self._ahttp

    def _extra_headers(self, client: Any, own: bool) -> dict[str, str] | None:
        """Our headers (API key, ...) for a request on a client the caller gave us; our own
        clients carry them already."""
        return None if own else self.headers

    def _url(self, generate: bool) -> str:
        url = self._urls.get(generate)
        if url is None:
            url = self._urls[generate] = self.base_url + str(self.wire.path(generate))
        return url

    def _http_timeout(self, t: Timeouts, stream: bool) -> Any:
        key = (t, stream)
        value = self._http_timeouts.get(key)
        if value is None:
            if len(self._http_timeouts) > 64:
                self._http_timeouts.clear()
            value = self._http_timeouts[key] = self._make_http_timeout(t, stream)
        return value

    def _make_http_timeout(self, t: Timeouts, stream: bool) -> Any:
        read: float | None
        if stream:  # a backstop only: our own first-token / stall / total deadlines fire first
            limits = [x for x in (t.first_token, t.stall, t.total) if x is not None]
            read = 2.0 * max(limits) + 1.0 if limits else None
        else:
            read = t.total
        return _httpx().Timeout(connect=t.connect, read=read, write=t.connect, pool=t.connect)

    def _prepare(
        self, messages: Any, params: dict[str, Any], stream: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        body = self.wire.body(self.model, messages, {**self.params, **params}, stream)
        return body, request_expectations(body)

    def _options(
        self, body: dict[str, Any], t: Timeouts, stream: bool, client: Any, own: bool
    ) -> Any:
        """The keyword arguments of a request carrying ``body`` (post or build_request)."""
        return {
            "json": body,
            "timeout": self._http_timeout(t, stream),
            "headers": self._extra_headers(client, own),
        }

    def _answer(self, response: Any, expect: dict[str, Any], start: float) -> LLMResponse:
        """The checked response of a JSON answer."""
        if not 200 <= response.status_code < 300:
            raise self._status_error(response)
        try:
            data = response.json()
        except ValueError:
            raise LLMHTTPError(
                502, f"answer is not JSON: {response.text[:200]!r}", self.name
            ) from None
        return self._finish(self.wire.parse(data), expect, start)

    def _stream_request(
        self,
        client: Any,
        own: bool,
        messages: Any,
        params: dict[str, Any],
        t: Timeouts,
        generate: bool,
    ) -> tuple[Any, dict[str, Any], float]:
        """(request, expectations, start) of a streamed call on ``client``."""
        body, expect = self._prepare(messages, params, True)
        start = time.perf_counter()
        options = self._options(body, t, True, client, own)
        return client.build_request("POST", self._url(generate), **options), expect, start

    @staticmethod
    def _deadline(t: Timeouts, first: bool, start: float) -> tuple[float | None, str]:
        """(seconds, kind) the next chunk of a stream may take: first-token or stall, or less
        when the total deadline comes first."""
        limit, kind = (t.first_token, "first_token") if first else (t.stall, "stall")
        if t.total is not None:
            remaining = t.total - (time.perf_counter() - start)
            if limit is None or remaining < limit:
                limit, kind = max(0.0, remaining), "total"
        return limit, kind

    def _finish(
        self, r: LLMResponse, expect: dict[str, Any], start: float, check: bool = True
    ) -> LLMResponse:
        r.backend = self.name
        r.response_time_ms = (time.perf_counter() - start) * 1000.0
        r.wants_json = expect["wants_json"]
        r.response_schema = expect["response_schema"]
        r.tool_schemas = expect["tool_schemas"]
        if r.model is None:
            r.model = self.model
        if check and self.checks:
            report = self.checks.run(r)
            r.quality = report.quality
            if self.breaker is not None:  # (without one nothing receives the score)
                report_quality(report.quality)
            if not report.passed:
                f = report.failures[0]
                raise OutputCheckFailed(f.check, f.reason, f.score, r)
        return r

    def _error(self, exc: Exception, t: Timeouts, first: bool) -> Exception:
        httpx = _httpx()
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return LLMTimeout("connect", t.connect or 0.0, self.name)
        if isinstance(exc, httpx.TimeoutException):
            if t.first_token is not None and first:
                return LLMTimeout("first_token", t.first_token, self.name)
            return LLMTimeout("total", t.total or 0.0, self.name)
        return LLMTransportError(f"{self.name}: {type(exc).__name__}: {exc}")

    def _status_error(self, response: Any) -> LLMHTTPError:
        return LLMHTTPError(
            response.status_code,
            response.text,
            self.name,
            _retry_after(response.headers),
        )

    def _timeouts(self, timeout: Any) -> Timeouts:
        """The client's timeouts, with ``timeout`` (if given) as the total (memoized)."""
        if timeout is None:
            return self.timeouts
        t = self._totals.get(timeout)
        if t is None or t.total is None:
            if len(self._totals) > 64:
                self._totals.clear()
            t = self._totals[timeout] = self.timeouts.with_total(timeout)
        return t

    @staticmethod
    def _messages(prompt: Any, messages: Any) -> Any:
        if messages is not None:
            if prompt is not None:
                raise TypeError("pass a prompt or messages=, not both")
            if not isinstance(messages, list) or not messages:
                raise ValueError(f"messages must be a non-empty list, got {messages!r}")
            return messages
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {prompt!r}")
        return [{"role": "user", "content": prompt}]

    # ------------------------------------------------------------------ sync JSON

    def chat(
        self, messages: list[Any], *, timeout: float | None = None, **params: Any
    ) -> LLMResponse:
        """One chat completion (JSON), checked and counted by the breaker."""
        return self._guarded(
            self._chat_raw, self._messages(None, messages), params, self._timeouts(timeout), False
        )

    def complete(self, prompt: str, *, timeout: float | None = None, **params: Any) -> LLMResponse:
        """``chat`` with one user message ``prompt``."""
        return self.chat(self._messages(prompt, None), timeout=timeout, **params)

    def _guarded(self, fn: Any, *args: Any) -> LLMResponse:
        with _Counted(self.stats):
            result = fn(*args) if self.breaker is None else self.breaker.call(fn, *args)
            return cast(LLMResponse, result)

    def _chat_raw(
        self, messages: Any, params: dict[str, Any], t: Timeouts, generate: bool
    ) -> LLMResponse:
        body, expect = self._prepare(messages, params, False)
        start = time.perf_counter()
        try:
            client = self._client()
            options = self._options(body, t, False, client, self._own_http)
            response = client.post(self._url(generate), **options)
        except _httpx().TransportError as exc:
            raise self._error(exc, t, False) from exc
        if t.total is not None and time.perf_counter() - start > t.total:
            raise LLMTimeout("total", t.total, self.name)
        return self._answer(response, expect, start)

    # ------------------------------------------------------------------ async JSON

    async def achat(
        self, messages: list[Any], *, timeout: float | None = None, **params: Any
    ) -> LLMResponse:
        return await self._aguarded(
            self._achat_raw, self._messages(None, messages), params, self._timeouts(timeout), False
        )

    async def acomplete(
        self, prompt: str, *, timeout: float | None = None, **params: Any
    ) -> LLMResponse:
        return await self.achat(self._messages(prompt, None), timeout=timeout, **params)

    async def _aguarded(self, fn: Any, *args: Any) -> LLMResponse:
        with _Counted(self.stats):
            if self.breaker is None:
                return cast(LLMResponse, await fn(*args))
            return cast(LLMResponse, await self.breaker.acall(fn, *args))

    async def _achat_raw(
        self, messages: Any, params: dict[str, Any], t: Timeouts, generate: bool
    ) -> LLMResponse:
        body, expect = self._prepare(messages, params, False)
        start = time.perf_counter()
        httpx = _httpx()
        try:
            client = self._aclient()
            options = self._options(body, t, False, client, self._own_ahttp)
            post = client.post(self._url(generate), **options)
            response = await (post if t.total is None else asyncio.wait_for(post, t.total))
        except asyncio.TimeoutError:
            raise LLMTimeout("total", t.total or 0.0, self.name) from None
        except httpx.TransportError as exc:
            raise self._error(exc, t, False) from exc
        return self._answer(response, expect, start)

    # ------------------------------------------------------------------ sync streaming

    def stream(
        self,
        messages: list[Any],
        *,
        timeout: float | None = None,
        hold: bool | int = False,
        **params: Any,
    ) -> ChatStream:
        """Stream a chat completion: an iterator of :class:`StreamEvent`; checked as it goes."""
        guarded, holder = self._guard_stream(
            self._stream_raw, self._messages(None, messages), params, timeout, False, hold
        )
        return ChatStream(self._counted(guarded), holder)

    def _guard_stream(
        self,
        raw: Any,
        messages: Any,
        params: dict[str, Any],
        timeout: float | None,
        generate: bool,
        hold: bool | int,
    ) -> tuple[Any, dict[str, Any]]:
        """``raw`` (``_stream_raw`` or ``_astream_raw``) as one guarded call of the breaker,
        and the holder its checked response lands in."""
        holder: dict[str, Any] = {}
        t = self._timeouts(timeout)
        return guard_stream(self.breaker, raw, messages, params, t, generate, hold, holder), holder

    def _counted(self, gen: Iterator[Any]) -> Iterator[Any]:
        with _Counted(self.stats):
            yield from gen

    def _open_stream(
        self, messages: Any, params: dict[str, Any], t: Timeouts, generate: bool
    ) -> tuple[Any, dict[str, Any], float]:
        client = self._client()
        request, expect, start = self._stream_request(
            client, self._own_http, messages, params, t, generate
        )
        try:
            response = client.send(request, stream=True)
        except _httpx().TransportError as exc:
            raise self._error(exc, t, True) from exc
        if not 200 <= response.status_code < 300:
            try:
                response.read()
            finally:
                response.close()
            raise self._status_error(response)
        return response, expect, start

    def _chunks(self, response: Any, t: Timeouts, start: float) -> Iterator[bytes]:
        """The body's chunks, with the first-token, stall and total deadlines enforced by a
        reader thread (a blocking socket read cannot be given a new deadline mid-body)."""
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def pump() -> None:
            try:
                for chunk in response.iter_bytes():
                    q.put(chunk)
                q.put(_END)
            except BaseException as exc:
                q.put(exc)

        threading.Thread(target=pump, name="tripwise-llm-stream", daemon=True).start()
        first = True
        while True:
            limit, kind = self._deadline(t, first, start)
            try:
                item = q.get(timeout=limit)
            except queue.Empty:
                response.close()
                raise LLMTimeout(kind, self._limit_of(kind, t), self.name) from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                httpx = _httpx()
                if isinstance(item, httpx.ReadTimeout):
                    kind = "first_token" if first else "stall"
                    raise LLMTimeout(kind, self._limit_of(kind, t), self.name) from item
                if isinstance(item, httpx.TransportError):
                    raise self._error(item, t, first) from item
                raise item
            first = False
            yield item

    @staticmethod
    def _limit_of(kind: str, t: Timeouts) -> float:
        return float(getattr(t, kind) or 0.0)

    def _stream_raw(
        self,
        messages: Any,
        params: dict[str, Any],
        t: Timeouts,
        generate: bool,
        hold: bool | int,
        holder: dict[str, Any],
    ) -> Iterator[StreamEvent]:
        response, expect, start = self._open_stream(messages, params, t, generate)
        parser = _StreamParser(self, hold)
        try:
            for chunk in self._chunks(response, t, start):
                yield from parser.events(chunk)
                if parser.done:
                    break
        finally:
            response.close()
        holder["response"] = self._finish(parser.response(), expect, start)
        yield from parser.rest()

    # ------------------------------------------------------------------ async streaming

    def astream(
        self,
        messages: list[Any],
        *,
        timeout: float | None = None,
        hold: bool | int = False,
        **params: Any,
    ) -> AsyncChatStream:
        guarded, holder = self._guard_stream(
            self._astream_raw, self._messages(None, messages), params, timeout, False, hold
        )
        return AsyncChatStream(self._acounted(guarded), holder)

    async def _acounted(self, gen: AsyncIterator[Any]) -> AsyncIterator[Any]:
        with _Counted(self.stats):
            async for item in gen:
                yield item

    async def _astream_raw(
        self,
        messages: Any,
        params: dict[str, Any],
        t: Timeouts,
        generate: bool,
        hold: bool | int,
        holder: dict[str, Any],
    ) -> AsyncIterator[StreamEvent]:
        httpx = _httpx()
        client = self._aclient()
        request, expect, start = self._stream_request(
            client, self._own_ahttp, messages, params, t, generate
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._error(exc, t, True) from exc
        try:
            if not 200 <= response.status_code < 300:
                await response.aread()
                raise self._status_error(response)
            parser = _StreamParser(self, hold)
            chunks = response.aiter_bytes().__aiter__()
            first = True
            while not parser.done:
                limit, kind = self._deadline(t, first, start)
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), limit)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise LLMTimeout(kind, self._limit_of(kind, t), self.name) from None
                except httpx.TransportError as exc:
                    raise self._error(exc, t, first) from exc
                first = False
                for event in parser.events(chunk):
                    yield event
        finally:
            await response.aclose()
        holder["response"] = self._finish(parser.response(), expect, start)
        for event in parser.rest():
            yield event

    # ------------------------------------------------------------------ health, lifecycle

    health_path = "/models"

    def health(self, timeout: float = 5.0) -> bool:
        """True when the backend answers its health URL with a 2xx."""
        try:
            r = self._client().get(self.base_url + self.health_path, timeout=timeout)
        except _httpx().TransportError:
            return False
        return bool(200 <= r.status_code < 300)

    async def ahealth(self, timeout: float = 5.0) -> bool:
        try:
            r = await self._aclient().get(self.base_url + self.health_path, timeout=timeout)
        except _httpx().TransportError:
            return False
        return bool(200 <= r.status_code < 300)

    def close(self) -> None:
        if self._own_http and self._http is not None:
            self._http.close()
            self._http = None

    async def aclose(self) -> None:
        if self._own_ahttp and self._ahttp is not None:
            await self._ahttp.aclose()
            self._ahttp = None
        self.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, model={self.model!r})"


class OpenAIClient(LLMClient):
    """OpenAI-compatible chat completions (OpenAI, vLLM, Modular MAX, Ollama's ``/v1``):
    ``base_url`` includes the version prefix (``http://localhost:8000/v1``)."""

    wire_class = OpenAIWire
    health_path = "/models"


class OllamaClient(LLMClient):
    """Ollama's native API: ``/api/chat`` (``chat``, ``stream``), ``/api/generate``
    (``generate``, ``stream_generate``, and ``complete`` with ``api="generate"``); health via
    ``/api/tags`` (or ``health_path="/api/health"``). A ``base_url`` ending in ``/v1`` is
    taken as the server's root."""

    wire_class = OllamaWire

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        model: str = "llama3.2",
        *,
        api: str = "chat",
        health_path: str = "/api/tags",
        **kwargs: Any,
    ) -> None:
        if api not in ("chat", "generate"):
            raise ValueError(f"api must be 'chat' or 'generate', got {api!r}")
        if isinstance(base_url, str) and base_url.rstrip("/").endswith("/v1"):
            base_url = base_url.rstrip("/")[:-3]
        self.api = api
        if not isinstance(health_path, str) or not health_path.startswith("/"):
            raise ValueError(f"health_path must start with '/', got {health_path!r}")
        self.health_path = health_path
        super().__init__(base_url, model, **kwargs)

    def _make_wire(self) -> Any:
        return OllamaWire(self.name, self.api)

    def complete(self, prompt: str, *, timeout: float | None = None, **params: Any) -> LLMResponse:
        if self.api == "generate":
            return self.generate(prompt, timeout=timeout, **params)
        return super().complete(prompt, timeout=timeout, **params)

    async def acomplete(
        self, prompt: str, *, timeout: float | None = None, **params: Any
    ) -> LLMResponse:
        if self.api == "generate":
            return await self.agenerate(prompt, timeout=timeout, **params)
        return await super().acomplete(prompt, timeout=timeout, **params)

    def generate(self, prompt: str, *, timeout: float | None = None, **params: Any) -> LLMResponse:
        """``/api/generate`` with ``prompt`` (JSON)."""
        self._messages(prompt, None)
        return self._guarded(self._chat_raw, prompt, params, self._timeouts(timeout), True)

    async def agenerate(
        self, prompt: str, *, timeout: float | None = None, **params: Any
    ) -> LLMResponse:
        self._messages(prompt, None)
        return await self._aguarded(self._achat_raw, prompt, params, self._timeouts(timeout), True)

    def stream_generate(
        self, prompt: str, *, timeout: float | None = None, hold: bool | int = False, **params: Any
    ) -> ChatStream:
        """``/api/generate`` streamed as NDJSON."""
        self._messages(prompt, None)
        guarded, holder = self._guard_stream(self._stream_raw, prompt, params, timeout, True, hold)
        return ChatStream(self._counted(guarded), holder)

    def astream_generate(
        self, prompt: str, *, timeout: float | None = None, hold: bool | int = False, **params: Any
    ) -> AsyncChatStream:
        self._messages(prompt, None)
        guarded, holder = self._guard_stream(self._astream_raw, prompt, params, timeout, True, hold)
        return AsyncChatStream(self._acounted(guarded), holder)
