"""Breakers, one retry loop and fallback for the official ``openai`` and ``ollama`` clients.

Both SDKs accept an HTTP client; these helpers give them one whose transport is a
:class:`~tripwise.http.BreakerTransport`, so call sites do not change. The SDK's own retries
are switched off (``max_retries=0``): with ``retry=`` the transport is the only retry loop,
and a breaker-open 503 says ``x-should-retry: false`` anyway.
"""

from __future__ import annotations

import importlib
from typing import Any

from tripwise.http.transport import AsyncBreakerTransport, BreakerTransport


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise ImportError("wrap_openai needs the openai SDK: pip install openai") from None
    return openai


def wrap_openai(
    client_or_kwargs: Any = None, /, *, asynchronous: bool | None = None, **transport_args: Any
) -> Any:
    """An ``openai.OpenAI`` / ``openai.AsyncOpenAI`` whose requests go through a breaker
    transport (``transport_args`` are :class:`BreakerTransport`'s), with ``max_retries=0``.

    ``client_or_kwargs`` is an existing client (copied with the new HTTP client) or the keyword
    arguments of a new one (``{"base_url": ..., "api_key": ...}``); ``asynchronous=True`` makes
    an ``AsyncOpenAI`` from kwargs. Fallback base URLs are relative to the client's base URL.
    """
    openai = _import_openai()
    if client_or_kwargs is None:
        client_or_kwargs = {}
    if isinstance(client_or_kwargs, dict):
        kwargs = dict(client_or_kwargs)
        if kwargs.pop("max_retries", 0) not in (0, None):
            raise ValueError(
                "max_retries must be 0 with wrap_openai: retries belong to the transport "
                "(pass retry=N), so there is exactly one retry loop"
            )
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        client = cls(max_retries=0, **kwargs)
    elif isinstance(client_or_kwargs, (openai.OpenAI, openai.AsyncOpenAI)):
        client = client_or_kwargs
        if asynchronous is not None and asynchronous != isinstance(client, openai.AsyncOpenAI):
            raise ValueError("asynchronous= contradicts the type of the client given")
    else:
        raise TypeError(
            "wrap_openai takes an openai.OpenAI / AsyncOpenAI client or a dict of its keyword "
            f"arguments, got {client_or_kwargs!r}"
        )
    transport_args.setdefault("base_path", client.base_url.path.rstrip("/"))
    if isinstance(client, openai.AsyncOpenAI):
        http_client = openai.DefaultAsyncHttpxClient(
            transport=AsyncBreakerTransport(**transport_args)
        )
    else:
        http_client = openai.DefaultHttpxClient(transport=BreakerTransport(**transport_args))
    return client.copy(http_client=http_client, max_retries=0)


def wrap_ollama(
    host: str | None = None, /, *, asynchronous: bool = False, **transport_args: Any
) -> Any:
    """An ``ollama.Client`` / ``ollama.AsyncClient`` for ``host`` whose requests go through a
    breaker transport (the ollama client has no retries of its own)."""
    try:
        ollama = importlib.import_module("ollama")
    except ImportError:
        raise ImportError("wrap_ollama needs the ollama client: pip install ollama") from None
    if asynchronous:
        return ollama.AsyncClient(host, transport=AsyncBreakerTransport(**transport_args))
    return ollama.Client(host, transport=BreakerTransport(**transport_args))
