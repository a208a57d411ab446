"""The chain walk: one request through a route's backends, JSON or streamed.

JSON: each live backend is tried under its breaker, with its timeout and retries, until an
answer passes its checks; then the cache, then the degraded message.

Streams have an explicit commit point. Until it, nothing reaches the client (not even the
status line), so a failure fails over invisibly. The hold window (characters, tokens or time)
is armed only when a next tier exists; without one the first chunk commits. After commit a
failure ends the stream with an OpenAI-shaped error event and no ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.signals import report_quality
from tripwise.gateway.checks import partial_reason
from tripwise.gateway.config import RouteConfig
from tripwise.gateway.jsonio import dumps
from tripwise.gateway.runtime import (
    Backend,
    CacheBackend,
    ClientFault,
    ClientGone,
    DegradedBackend,
    LiveBackend,
    Runtime,
    cache_key,
)
from tripwise.gateway.upstream import UpstreamError

logger = logging.getLogger("tripwise.gateway")
_rng = random.Random()

Send = Callable[[dict[str, Any]], Awaitable[None]]
T = TypeVar("T")


class QualityFailed(Exception):
    """An answer failed a check (``reason`` like ``quality:empty``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass
class Audit:
    """How an answer was obtained: sent as the ``x-tripwise-*`` headers."""

    route: str
    backend: str = ""
    tier: int = 0
    attempts: int = 0
    reasons: list[str] = field(default_factory=list)
    cache_age: float | None = None

    def skip(self, backend: str, reason: str) -> None:
        self.reasons.append(f"{backend}={reason}")

    def headers(self) -> list[tuple[bytes, bytes]]:
        h = [
            (b"x-tripwise-route", self.route.encode("utf-8", "replace")),
            (b"x-tripwise-backend", self.backend.encode()),
            (b"x-tripwise-tier", str(self.tier).encode()),
            (b"x-tripwise-attempts", str(self.attempts).encode()),
        ]
        if self.reasons:
            h.append((b"x-tripwise-fallback-reason", ", ".join(self.reasons).encode()))
        if self.cache_age is not None:
            age = max(0, int(self.cache_age))
            h.append((b"x-tripwise-cache-age", str(age).encode()))
            h.append((b"age", str(age).encode()))
        return h


@dataclass
class Outcome:
    """A finished non-streaming answer (or error) ready to send."""

    status: int
    body: bytes
    audit: Audit
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class _Answer:
    """A cached or degraded answer: sent as JSON or as a stream, as the request asked."""

    completion: dict[str, Any]
    audit: Audit


@dataclass
class _Walk:
    """One request's way through a chain."""

    route: RouteConfig
    chain: tuple[Backend, ...]
    audit: Audit
    deadline: float
    key: str = ""


LiveStep = Callable[[_Walk, LiveBackend, int], Awaitable["Outcome | bool | None"]]


def openai_error(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> bytes:
    return dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


class Stats:
    """Per route and backend: answers served and failures (for /metrics)."""

    def __init__(self) -> None:
        self.served: dict[tuple[str, str], int] = {}
        self.failed: dict[tuple[str, str], int] = {}
        self.fallbacks: dict[tuple[str, str], int] = {}
        self.requests: dict[tuple[str, int], int] = {}

    def serve(self, route: str, backend: str) -> None:
        key = (route, backend)
        self.served[key] = self.served.get(key, 0) + 1

    def fail(self, route: str, backend: str, reason: str) -> None:
        key = (route, backend)
        self.failed[key] = self.failed.get(key, 0) + 1
        kind = reason.split(":", 1)[0]
        fkey = (route, kind)
        self.fallbacks[fkey] = self.fallbacks.get(fkey, 0) + 1

    def status(self, route: str, code: int) -> None:
        key = (route, code)
        self.requests[key] = self.requests.get(key, 0) + 1


def _completion_from_text(model: str, text: str, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": f"chatcmpl-tw-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _chunks_of(completion: Mapping[str, Any]) -> list[bytes]:
    """A whole answer as an SSE stream (cache and degraded answers to a streaming request)."""
    choice = (completion.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    base = {
        "id": completion.get("id", "chatcmpl-tw"),
        "object": "chat.completion.chunk",
        "created": completion.get("created", int(time.time())),
        "model": completion.get("model", ""),
    }
    out = []
    first: dict[str, Any] = {"role": "assistant", "content": msg.get("content") or ""}
    if msg.get("tool_calls"):
        first["tool_calls"] = [{"index": i, **c} for i, c in enumerate(msg["tool_calls"])]
    out.append({**base, "choices": [{"index": 0, "delta": first, "finish_reason": None}]})
    out.append(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason", "stop")}
            ],
        }
    )
    return [b"data: " + dumps(c) + b"\n\n" for c in out] + [b"data: [DONE]\n\n"]


class _Admission:
    """Enter a breaker for one attempt; leave it with the attempt's outcome."""

    __slots__ = ("backend", "done")

    def __init__(self, backend: LiveBackend) -> None:
        self.backend = backend
        self.done = False

    async def enter(self) -> None:
        await self.backend.breaker.__aenter__()

    async def ok(self, quality: float | None = None) -> None:
        if self.done:
            return
        self.done = True
        if quality is not None and self.backend.breaker.uses_quality:
            report_quality(quality)
        await self.backend.breaker.__aexit__(None, None, None)

    async def fail(self, exc: BaseException) -> None:
        if self.done:
            return
        self.done = True
        b = self.backend.breaker
        if isinstance(exc, QualityFailed) and b.uses_quality:
            # A quality-aware breaker hears a bad answer as a score of 0 (its quality
            # conditions decide); others count it as a failure.
            report_quality(0.0)
            await b.__aexit__(None, None, None)
            return
        try:
            await b.__aexit__(type(exc), exc, None)
        except CircuitBreakerOpen:
            logger.warning("breaker %r opened after: %s", b.name, exc)


class Engine:
    """Runs requests against the current :class:`Runtime` (swapped on reload)."""

    def __init__(self, runtime: Runtime, stats: Stats | None = None) -> None:
        self.runtime = runtime
        self.stats = stats if stats is not None else Stats()
        self.draining = False
        self.open_streams: set[asyncio.Task[Any]] = set()
        self.last_reason: dict[str, str] = {}

    # ------------------------------------------------------------------ shared pieces

    def _all_open_decision(
        self, route: RouteConfig, chain: tuple[Backend, ...], audit: Audit
    ) -> tuple[str, float]:
        """('walk', 0) normally; ('fail', retry_after) or ('wait', seconds) when every live
        backend of the chain is open."""
        live = [b for b in chain if isinstance(b, LiveBackend)]
        if not live:
            return "walk", 0.0
        now = time.time()
        for b in live:
            b.expire_override(now)
        if not all(b.rejecting() for b in live):
            return "walk", 0.0
        soonest = min(b.retry_after() for b in live)
        if route.when_all_open == "fail_fast":
            return "fail", soonest
        if route.when_all_open == "wait":
            if soonest * 1000.0 <= route.wait_ms:
                return "wait", soonest
            return "fail", soonest
        return "walk", 0.0

    def _fail_fast(self, audit: Audit, chain: tuple[Backend, ...], retry_after: float) -> Outcome:
        for b in chain:
            if isinstance(b, LiveBackend):
                audit.skip(b.name, "breaker_open")
        seconds = 1 if not math.isfinite(retry_after) else max(1, math.ceil(retry_after))
        if not math.isfinite(retry_after):
            seconds = 30
        body = openai_error(
            "every backend of this route is open; retry later",
            "service_unavailable",
            "all_backends_open",
        )
        return Outcome(503, body, audit, [(b"retry-after", str(seconds).encode())])

    async def _wait_for_probe(self, route: RouteConfig, w: _Walk, seconds: float) -> None:
        """Sleep until the soonest breaker of an all-open chain is due for a probe. A timer
        may fire early (uvloop's have millisecond resolution: up to ~1 ms before the
        breakers' monotonic clock says the probe is due), so look again and sleep what is
        left rather than walk into breakers that still refuse."""
        while await self._sleep(seconds, w.deadline):
            decision, seconds = self._all_open_decision(route, w.chain, w.audit)
            if decision != "wait":
                return
            seconds += 0.001

    async def _sleep(self, seconds: float, deadline: float) -> bool:
        """Sleep unless it would pass the deadline (False: it would)."""
        if time.monotonic() + seconds >= deadline:
            return False
        if seconds > 0:
            await asyncio.sleep(seconds)
        return True

    def _retry_delay(self, backend: LiveBackend, n: int, exc: BaseException) -> float | None:
        """Seconds before retry ``n`` on the same backend, or None: do not retry."""
        if n >= backend.cfg.retry.attempts:
            return None
        if isinstance(exc, UpstreamError) and not exc.retryable:
            return None
        if not backend.budget.try_retry():
            return None
        delay = backend.backoff.delay(n, _rng)
        if isinstance(exc, UpstreamError) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, backend.cfg.retry.backoff_max))
        return delay

    async def _store(
        self, chain: tuple[Backend, ...], key: str, completion: dict[str, Any]
    ) -> None:
        for b in chain:
            if isinstance(b, CacheBackend):
                await b.set(key, completion)

    def _note_failure(self, audit: Audit, b: LiveBackend, reason: str) -> None:
        audit.skip(b.name, reason)
        self.last_reason[b.name] = reason
        self.stats.fail(audit.route, b.name, reason)
        if reason.endswith("timeout") or reason == "error:stall":
            b.timeouts += 1

    def _exhausted(self, audit: Audit) -> Outcome:
        only_open = audit.reasons and all(r.endswith("=breaker_open") for r in audit.reasons)
        if only_open:
            return Outcome(
                503,
                openai_error(
                    "every backend of this route is open",
                    "service_unavailable",
                    "all_backends_open",
                ),
                audit,
                [(b"retry-after", b"1")],
            )
        detail = "; ".join(audit.reasons) or "no backend answered"
        return Outcome(
            502,
            openai_error(
                f"no backend gave a usable answer ({detail})",
                "upstream_error",
                "all_backends_failed",
            ),
            audit,
        )

    # ------------------------------------------------------------------ the chain walk

    async def _walk(
        self, route: RouteConfig, body: dict[str, Any], live: LiveStep
    ) -> Outcome | _Answer | bool:
        """Walk the route's chain, JSON and streams alike. ``live(walk, backend, tier)`` tries
        one live backend: an Outcome (its answer), True (a stream it answered itself) or
        None (move on). Returns an Outcome to send as it is, an :class:`_Answer` (a cached
        or degraded answer, sent in the request's shape), or True."""
        chain = self.runtime.chains[route.name]
        w = _Walk(route, chain, Audit(route.name), time.monotonic() + route.deadline)
        decision, seconds = self._all_open_decision(route, chain, w.audit)
        if decision == "fail":
            return self._fail_fast(w.audit, chain, seconds)
        if decision == "wait":
            await self._wait_for_probe(route, w, seconds)
        if any(isinstance(b, CacheBackend) for b in chain):
            w.key = cache_key(route.name, body)
        audit = w.audit
        for index, b in enumerate(chain, 1):
            if isinstance(b, LiveBackend):
                if time.monotonic() >= w.deadline:
                    audit.skip(b.name, "deadline")  # cache and degraded still answer
                    continue
                try:
                    got = await live(w, b, index)
                except ClientFault as exc:
                    audit.backend, audit.tier = b.name, index
                    return Outcome(exc.status, exc.body, audit)
                if got is None:
                    continue
                return got
            if isinstance(b, CacheBackend):
                hit = await b.get(w.key)
                if hit is None:
                    audit.skip(b.name, "cache_miss")
                    continue
                value, stored_at = hit
                audit.backend, audit.tier = b.name, index
                audit.cache_age = max(0.0, time.time() - stored_at)
                self.stats.serve(route.name, b.name)
                return _Answer(value, audit)
            if isinstance(b, DegradedBackend):
                audit.backend, audit.tier = b.name, index
                self.stats.serve(route.name, b.name)
                model = str(body.get("model") or route.name)
                reason = audit.reasons[-1] if audit.reasons else ""
                text = b.message(model=model, route=route.name, reason=reason)
                return _Answer(_completion_from_text(model, text), audit)
        return self._exhausted(audit)

    # ------------------------------------------------------------------ JSON

    async def complete(self, route: RouteConfig, body: dict[str, Any]) -> Outcome:
        async def live(w: _Walk, b: LiveBackend, index: int) -> Outcome | None:
            completion = await self._complete_live(b, body, w.audit, w.deadline)
            if completion is None:
                return None
            w.audit.backend, w.audit.tier = b.name, index
            self.stats.serve(route.name, b.name)
            if w.key:
                await self._store(w.chain, w.key, completion)
            return Outcome(200, dumps(completion), w.audit)

        got = await self._walk(route, body, live)
        if isinstance(got, _Answer):
            return Outcome(200, dumps(got.completion), got.audit)
        assert isinstance(got, Outcome)  # only a stream's live step answers by itself
        return got

    async def _attempts(
        self,
        b: LiveBackend,
        audit: Audit,
        deadline: float,
        attempt: Callable[[_Admission, float], Awaitable[T]],
    ) -> T | None:
        """The attempt loop shared by JSON and streams: ``attempt(admission, remaining)``
        under the backend's breaker, its retries and the deadline, until it returns (its
        value is returned) or gives up (None: try the next tier). ``attempt`` leaves the
        admission on success; failures it raises are heard here. A 4xx that is the
        request's fault becomes :class:`ClientFault` (no other backend is tried)."""
        b.budget.record_call()
        n = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            adm = _Admission(b)
            try:
                await adm.enter()
            except CircuitBreakerOpen:
                audit.skip(b.name, "breaker_open")
                return None
            n += 1
            audit.attempts += 1
            try:
                return await attempt(adm, remaining)
            except UpstreamError as exc:
                if exc.status is not None and 400 <= exc.status < 500 and not exc.retryable:
                    fault = ClientFault(exc.status, _client_error_body(exc))
                    await adm.fail(fault)
                    raise fault from exc
                await adm.fail(exc)
                self._note_failure(audit, b, exc.reason)
                delay = self._retry_delay(b, n, exc)
            except QualityFailed as exc:
                await adm.fail(exc)
                self._note_failure(audit, b, exc.reason)
                delay = self._retry_delay(b, n, exc)
            except BaseException as exc:
                await adm.fail(exc)
                raise
            if delay is None or not await self._sleep(delay, deadline):
                return None

    async def _complete_live(
        self, b: LiveBackend, body: dict[str, Any], audit: Audit, deadline: float
    ) -> dict[str, Any] | None:
        async def attempt(adm: _Admission, remaining: float) -> dict[str, Any]:
            completion = await b.upstream.complete(body, min(b.cfg.timeout, remaining))
            reason, quality = b.checks.check(completion, body)
            if reason is not None:
                raise QualityFailed(reason)
            await adm.ok(quality)
            return completion

        return await self._attempts(b, audit, deadline, attempt)

    # ------------------------------------------------------------------ streaming

    async def stream(self, route: RouteConfig, body: dict[str, Any], send: Send) -> int:
        """Answer a streaming request through ``send`` (ASGI); returns the HTTP status."""

        async def live(w: _Walk, b: LiveBackend, index: int) -> bool | None:
            has_next = index < len(w.chain)
            answered = await self._stream_live(
                route, b, index, has_next, body, w.audit, w.deadline, send, w.chain, w.key
            )
            return True if answered else None

        got = await self._walk(route, body, live)
        if got is True:
            return 200
        if isinstance(got, _Answer):
            await send_sse(send, got.audit, _chunks_of(got.completion))
            return 200
        assert isinstance(got, Outcome)
        await send_json(send, got)
        return got.status

    async def _stream_live(
        self,
        route: RouteConfig,
        b: LiveBackend,
        index: int,
        has_next: bool,
        body: dict[str, Any],
        audit: Audit,
        deadline: float,
        send: Send,
        chain: tuple[Backend, ...],
        key: str,
    ) -> bool:
        """True when this backend answered (committed and finished, or failed after commit:
        either way the client has its answer); False to move on."""
        hold = route.hold if has_next and route.hold.armed else None

        async def attempt(adm: _Admission, remaining: float) -> bool:
            st = _StreamAttempt(b.checks.stream() if hold is not None else None)
            try:
                await self._relay(route, b, index, hold, body, audit, send, adm, st, remaining)
            except (UpstreamError, QualityFailed) as exc:
                if not st.committed:
                    raise  # nothing reached the client: the attempt loop fails over
                await adm.fail(exc)
                self._note_failure(audit, b, exc.reason)
                await _send_error_event(send, exc.reason, str(exc))
                return True
            except OSError as exc:  # the client went away while we were sending
                await adm.fail(ClientGone(str(exc)))
                return True
            except BaseException as exc:
                if st.committed:
                    await adm.fail(ClientGone(repr(exc)))
                raise
            if key and st.completion is not None:
                await self._store(chain, key, st.completion)
            return True

        return bool(await self._attempts(b, audit, deadline, attempt))

    async def _relay(
        self,
        route: RouteConfig,
        b: LiveBackend,
        index: int,
        hold: Any,
        body: dict[str, Any],
        audit: Audit,
        send: Send,
        adm: _Admission,
        st: _StreamAttempt,
        remaining: float,
    ) -> None:
        """One streamed attempt: hold chunks until the commit point, then forward each
        network read as it comes (one write per read). Without a hold window the first
        chunk commits: the status line, headers and first chunk leave at once."""
        started = time.monotonic()
        agen = b.upstream.stream(
            body, min(b.cfg.first_byte_timeout, remaining), b.cfg.stall_timeout
        )
        held: list[bytes] = []
        try:
            async for batch in agen:
                out: list[bytes] = []
                for chunk, line in batch:
                    st.feed(chunk)
                    if st.committed:
                        out.append(line)
                        continue
                    held.append(line)
                    if hold is not None and not (
                        (hold.chars and st.chars >= hold.chars)
                        or (hold.tokens and st.tokens >= hold.tokens)
                        or (hold.ms and (time.monotonic() - started) * 1000 >= hold.ms)
                    ):
                        continue
                    st.committed = True
                    await _start_sse(send, audit, b.name, index)
                    await _send_body(send, b"".join(held))
                    held = []
                if out:
                    await _send_body(send, b"".join(out))
        finally:
            await agen.aclose()  # type: ignore[attr-defined]
        completion = _assemble(st.last, st.parts, st.finish, st.tool_calls, body)
        reason, quality = b.checks.check(completion, body)
        if reason is not None and not st.committed:
            raise QualityFailed(reason)
        if not st.committed:
            st.committed = True
            await _start_sse(send, audit, b.name, index)
            await _send_body(send, b"".join(held))
        await _send_body(send, b"data: [DONE]\n\n", more=False)
        self.stats.serve(route.name, b.name)
        if reason is not None:
            # Past the commit point the answer is the client's; the breaker still hears
            # that it failed its checks, and it is not cached.
            await adm.fail(QualityFailed(reason))
            self.last_reason[b.name] = reason
            return
        await adm.ok(quality)
        st.completion = completion


class _StreamAttempt:
    """What one streamed attempt has seen so far (the answer is assembled from it)."""

    __slots__ = (
        "chars",
        "checker",
        "committed",
        "completion",
        "finish",
        "last",
        "parts",
        "tokens",
        "tool_calls",
    )

    def __init__(self, checker: Any) -> None:
        self.checker = checker
        self.committed = False
        self.parts: list[str] = []
        self.chars = 0
        self.tokens = 0
        self.finish: str | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.last: dict[str, Any] = {}
        self.completion: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> None:
        """Take in one chunk; raise QualityFailed when the hold-window checks refuse it."""
        self.last = chunk
        choices = chunk.get("choices")
        if not (choices and isinstance(choices, list) and isinstance(choices[0], dict)):
            return
        c0 = choices[0]
        delta = c0.get("delta")
        if isinstance(delta, dict):
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.parts.append(text)
                self.chars += len(text)
                self.tokens += 1
                if self.checker is not None and not self.committed:
                    early = self.checker.feed(text)
                    if early is not None:
                        raise QualityFailed(partial_reason(early.check))
            if delta.get("tool_calls"):
                _merge_tool_calls(self.tool_calls, delta["tool_calls"])
        if c0.get("finish_reason"):
            self.finish = c0["finish_reason"]


def _client_error_body(exc: UpstreamError) -> bytes:
    return openai_error(
        f"the backend rejected the request: {exc}", "invalid_request_error", exc.reason
    )


def _merge_tool_calls(acc: dict[int, dict[str, Any]], deltas: Any) -> None:
    """Accumulate streamed tool-call fragments (arguments arrive in pieces) by index."""
    if not isinstance(deltas, list):
        return
    for d in deltas:
        if not isinstance(d, dict):
            continue
        index = d.get("index", 0)
        call = acc.setdefault(
            index if isinstance(index, int) else 0,
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if isinstance(d.get("id"), str):
            call["id"] = d["id"]
        fn = d.get("function")
        if isinstance(fn, dict):
            if isinstance(fn.get("name"), str):
                call["function"]["name"] += fn["name"]
            if isinstance(fn.get("arguments"), str):
                call["function"]["arguments"] += fn["arguments"]


def _assemble(
    last: Mapping[str, Any],
    parts: list[str],
    finish: str | None,
    tool_calls: dict[int, dict[str, Any]],
    body: Mapping[str, Any],
) -> dict[str, Any]:
    completion = _completion_from_text(
        str(last.get("model") or body.get("model") or ""), "".join(parts), finish or "stop"
    )
    if tool_calls:
        message = completion["choices"][0]["message"]
        message["tool_calls"] = [tool_calls[i] for i in sorted(tool_calls)]
        if not message["content"]:
            message["content"] = None
    if finish is None:
        completion["choices"][0]["finish_reason"] = None
    return completion


# ---------------------------------------------------------------------------- ASGI sending

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def send_json(send: Send, out: Outcome) -> None:
    headers = _JSON_HEADERS + out.audit.headers() + out.extra_headers
    headers.append((b"content-length", str(len(out.body)).encode()))
    await send({"type": "http.response.start", "status": out.status, "headers": headers})
    await send({"type": "http.response.body", "body": out.body})


async def _start_sse(send: Send, audit: Audit, backend: str, tier: int) -> None:
    audit.backend, audit.tier = backend, tier
    await send(
        {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + audit.headers()}
    )


async def _send_body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def send_sse(send: Send, audit: Audit, chunks: list[bytes]) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + audit.headers()}
    )
    await _send_body(send, b"".join(chunks), more=False)


async def _send_error_event(send: Send, code: str, message: str) -> None:
    """End a committed stream with an OpenAI-shaped error event and no ``[DONE]``."""
    event = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    await _send_body(send, b"data: " + dumps(event) + b"\n\n", more=False)
