"""How a transport decides: which breaker a request belongs to, which answers are failures,
where a request goes when its breaker is open, and what an open breaker answers.

Everything here is library-neutral: the HTTP library (httpx or httpx2) is read from the
request itself, so one transport class serves both.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

KeyFn = Callable[[Any], str]


def library_of(obj: Any) -> ModuleType:
    """The HTTP library (``httpx`` or ``httpx2``) a request or response object belongs to."""
    cls = type(obj)
    found = _LIBRARIES.get(cls)
    if found is not None:
        return found
    root = cls.__module__.partition(".")[0]
    module = sys.modules.get(root)
    if module is None or not hasattr(module, "Response"):
        raise TypeError(
            f"expected an httpx or httpx2 request, got {type(obj).__module__}.{type(obj).__name__}"
        )
    _LIBRARIES[cls] = module
    return module


_LIBRARIES: dict[type, ModuleType] = {}


# ------------------------------------------------------------------ keys


def by_origin(request: Any) -> str:
    """The default breaker key: scheme, host and port (``https://api.openai.com:443``)."""
    url = request.url
    return f"{url.scheme}://{url.host}:{url.port or _DEFAULT_PORTS.get(url.scheme, 0)}"


def by_path(request: Any) -> str:
    """Origin plus path: one breaker per endpoint (``.../v1/chat/completions``)."""
    return by_origin(request) + str(request.url.path)


def by_model(request: Any) -> str:
    """Origin plus the ``model`` field of a JSON body: one breaker per model of a backend."""
    model = None
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, UnicodeDecodeError, AttributeError, RuntimeError):
        body = None
    if isinstance(body, dict):
        model = body.get("model")
    return by_origin(request) + (f"#{model}" if isinstance(model, str) else "")


_DEFAULT_PORTS = {"http": 80, "https": 443}
KEYS: dict[str, KeyFn] = {"origin": by_origin, "path": by_path, "model": by_model}


def key_function(key: str | KeyFn) -> KeyFn:
    if callable(key):
        return key
    try:
        return KEYS[key]
    except (KeyError, TypeError):
        raise ValueError(
            f"key must be one of {sorted(KEYS)} or a callable (request) -> str, got {key!r}"
        ) from None


# ------------------------------------------------------------------ classification

DEFAULT_FAILURE_STATUSES = frozenset({429, *range(500, 600)})
"""Statuses that count as failures by default: 5xx and 429 (other 4xx are the caller's fault)."""


def check_statuses(statuses: Iterable[int]) -> frozenset[int]:
    try:
        out = frozenset(statuses)
    except TypeError:
        raise TypeError(f"failure_statuses must be an iterable of ints, got {statuses!r}") from None
    for s in out:
        if isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599:
            raise ValueError(f"failure_statuses must hold HTTP statuses 100-599, got {s!r}")
    return out


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds of a ``Retry-After`` header (delta seconds or HTTP date); None if absent/bad."""
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        import email.utils
        import time

        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, value) if math.isfinite(value) else None


STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl")


def is_stream(response: Any) -> bool:
    """True for SSE / NDJSON responses: passed through unread unless a stream check is set."""
    ctype = str(response.headers.get("content-type", ""))
    return ctype.startswith(STREAM_TYPES)


# ------------------------------------------------------------------ fallback


@dataclass(frozen=True)
class Fallback:
    """Another backend to send the request to: ``base_url`` replaces the primary's base URL;
    ``model`` (optional) replaces the ``model`` field of a JSON body; ``headers`` are set on
    the rewritten request (e.g. a different ``Authorization``)."""

    base_url: str
    model: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"fallback base_url must be an http(s) URL, got {self.base_url!r}")
        if self.model is not None and not isinstance(self.model, str):
            raise TypeError(f"fallback model must be a string, got {self.model!r}")


def check_fallback(fallback: Any) -> tuple[list[Fallback], Any]:
    """Split ``fallback`` into base-URL hops and a final answer (callable or (status, json))."""
    if fallback is None:
        return [], None
    if isinstance(fallback, (str, Fallback)):
        fallback = [fallback]
    if callable(fallback):
        return [], fallback
    if isinstance(fallback, tuple) and len(fallback) == 2 and isinstance(fallback[0], int):
        status, _body = fallback
        if not 100 <= status <= 599:
            raise ValueError(f"a synthetic fallback status must be 100-599, got {status!r}")
        return [], fallback
    hops: list[Fallback] = []
    final: Any = None
    try:
        items = list(fallback)
    except TypeError:
        raise TypeError(
            "fallback must be a base URL, a Fallback, a list of them, a callable "
            f"(request) -> response, or a (status, json) tuple; got {fallback!r}"
        ) from None
    for i, item in enumerate(items):
        if isinstance(item, str):
            hops.append(Fallback(item))
        elif isinstance(item, Fallback):
            hops.append(item)
        elif i == len(items) - 1 and (callable(item) or isinstance(item, tuple)):
            final = check_fallback(item)[1]
        else:
            raise TypeError(f"fallback[{i}] must be a base URL or a Fallback, got {item!r}")
    return hops, final


def rewrite(lib: ModuleType, request: Any, base_path: str, hop: Fallback, body: bytes) -> Any:
    """A copy of ``request`` aimed at ``hop``: the path below ``base_path`` is kept."""
    path = request.url.raw_path.decode("ascii")
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    url = hop.base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)
    headers = [
        (k, v) for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
    ]
    if hop.model is not None and body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and "model" in data:
            data["model"] = hop.model
            body = json.dumps(data).encode()
    new = lib.Request(
        request.method, url, headers=headers, content=body, extensions=request.extensions
    )
    for k, v in hop.headers.items():
        new.headers[k] = v
    return new


# ------------------------------------------------------------------ synthetic answers


def open_response(lib: ModuleType, request: Any, breaker: str, retry_after: float) -> Any:
    """The answer of an open breaker: 503, ``Retry-After``, ``x-should-retry: false`` and an
    OpenAI-shaped JSON error (so the official SDK raises a clean ``APIStatusError``)."""
    seconds = max(1, math.ceil(retry_after)) if math.isfinite(retry_after) else 60
    body = {
        "error": {
            "message": f"circuit breaker {breaker!r} is open; retry after {seconds}s",
            "type": "circuit_breaker_open",
            "code": "circuit_breaker_open",
            "param": None,
        }
    }
    return lib.Response(
        503,
        headers={
            "retry-after": str(seconds),
            "x-should-retry": "false",
            "x-tripwise-breaker": breaker,
        },
        json=body,
        request=request,
    )


def static_response(lib: ModuleType, request: Any, answer: tuple[int, Any]) -> Any:
    status, body = answer
    if isinstance(body, (bytes, str)):
        return lib.Response(status, content=body, request=request)
    return lib.Response(status, json=body, request=request)
