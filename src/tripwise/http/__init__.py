"""Breaker-aware HTTP transports for httpx and httpx2 clients and the LLM SDKs built on them.

``pip install 'tripwise[http]'``::

    import httpx
    from tripwise.http import BreakerTransport

    client = httpx.Client(transport=BreakerTransport(retry=3, fallback=["http://backup:8000"]))
"""

from tripwise.http.errors import BodyCheckFailed, UpstreamFailure
from tripwise.http.routing import (
    DEFAULT_FAILURE_STATUSES,
    Fallback,
    by_model,
    by_origin,
    by_path,
    is_stream,
    open_response,
    retry_after_seconds,
)
from tripwise.http.sdk import wrap_ollama, wrap_openai
from tripwise.http.transport import AsyncBreakerTransport, BreakerTransport

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "AsyncBreakerTransport",
    "BodyCheckFailed",
    "BreakerTransport",
    "Fallback",
    "UpstreamFailure",
    "by_model",
    "by_origin",
    "by_path",
    "is_stream",
    "open_response",
    "retry_after_seconds",
    "wrap_ollama",
    "wrap_openai",
]
