"""The seed AI platform's fallback chain, on the gateway's engine:
MAX GPU → Ollama CPU → cache → degraded message, each live tier with its own breaker.

    chain = FallbackChain(max_gpu_endpoint="http://max-serve:8080",
                          ollama_cpu_endpoint="http://ollama:11434",   # optional
                          redis_client=redis.Redis(...),                # optional
                          degraded_message="Service temporarily unavailable")
    result = await chain.generate("Hello")          # or await chain.chat(messages)
    result.content, result.tier                      # "...", "max_gpu" | "ollama_cpu" | ...

Breakers follow :class:`~tripwise.compat.classic.CircuitBreakerConfig` (3 consecutive failures,
5 s timeout, 30 s recovery, 2 successes to close). Answers are cached (Redis when a client is
given, else in memory) for ``cache_ttl_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tripwise.compat.classic import CircuitBreakerConfig
from tripwise.core.registry import Registry

DEFAULT_DEGRADED = "Service temporarily unavailable"


@dataclass(frozen=True)
class FallbackResult:
    """One answer of the chain: its text, the tier that gave it and how it got there."""

    content: str
    tier: str
    completion: dict[str, Any]
    attempts: int = 0
    fallback_reasons: list[str] = field(default_factory=list)
    cache_age_seconds: float | None = None

    @property
    def degraded(self) -> bool:
        return self.tier == "degraded"


def _openai_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _check_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
    return value


class FallbackChain:
    """The seed's multi-tier fallback (see the module docstring)."""

    def __init__(
        self,
        max_gpu_endpoint: str,
        ollama_cpu_endpoint: str | None = None,
        redis_client: Any = None,
        degraded_message: str = DEFAULT_DEGRADED,
        *,
        config: CircuitBreakerConfig | None = None,
        max_gpu_model: str | None = None,
        ollama_model: str = "llama3.2",
        cache_ttl_seconds: float = 3600.0,
        registry: Registry | None = None,
    ) -> None:
        from tripwise.gateway.config import (
            BackendConfig,
            BreakerConfig,
            GatewayConfig,
            HoldConfig,
            RouteConfig,
        )
        from tripwise.gateway.engine import Engine
        from tripwise.gateway.runtime import Runtime

        _check_url("max_gpu_endpoint", max_gpu_endpoint)
        if ollama_cpu_endpoint is not None:
            _check_url("ollama_cpu_endpoint", ollama_cpu_endpoint)
        if not isinstance(degraded_message, str):
            raise TypeError(f"degraded_message must be a string, got {degraded_message!r}")
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise TypeError(f"config must be a CircuitBreakerConfig, got {config!r}")
        if isinstance(cache_ttl_seconds, bool) or not (
            isinstance(cache_ttl_seconds, (int, float)) and cache_ttl_seconds > 0
        ):
            raise ValueError(f"cache_ttl_seconds must be > 0, got {cache_ttl_seconds!r}")
        cfg = config or CircuitBreakerConfig()
        self.config = cfg
        self.max_gpu_endpoint = max_gpu_endpoint
        self.ollama_cpu_endpoint = ollama_cpu_endpoint
        self.redis_client = redis_client
        self.degraded_message = degraded_message
        breaker = BreakerConfig(
            trip_on={"consecutive_failures": cfg.failure_threshold},
            half_open_after=cfg.recovery_timeout_seconds,
            recovery_threshold=cfg.success_threshold,
        )
        t = cfg.timeout_seconds
        live: dict[str, Any] = {
            "timeout": t,
            "first_byte_timeout": t,
            "stall_timeout": t,
            "breaker": breaker,
        }
        backends = {
            "max_gpu": BackendConfig(
                "max_gpu", "openai", url=_openai_base(max_gpu_endpoint), model=max_gpu_model, **live
            )
        }
        if ollama_cpu_endpoint is not None:
            backends["ollama_cpu"] = BackendConfig(
                "ollama_cpu",
                "ollama",
                url=ollama_cpu_endpoint.rstrip("/"),
                model=ollama_model,
                **live,
            )
        backends["cache"] = BackendConfig(
            "cache",
            "cache",
            store="redis" if redis_client is not None else "memory",
            ttl=float(cache_ttl_seconds),
        )
        backends["degraded"] = BackendConfig("degraded", "degraded", message=degraded_message)
        route = RouteConfig("*", tuple(backends), deadline=4 * t + 1, hold=HoldConfig())
        gw = GatewayConfig(path="<FallbackChain>", backends=backends, routes={"*": route})
        self.registry = registry if registry is not None else Registry()
        self._runtime = Runtime(gw, registry=self.registry, redis_client=redis_client)
        self._engine = Engine(self._runtime)
        self._route = route

    @property
    def tiers(self) -> list[str]:
        return list(self._route.chain)

    @property
    def breakers(self) -> dict[str, Any]:
        """The live tiers' breakers (:class:`tripwise.CircuitBreaker`), by tier name."""
        return {b.name: b.breaker for b in self._runtime.live_backends()}

    async def chat(self, messages: list[dict[str, Any]], **params: Any) -> FallbackResult:
        """Answer an OpenAI-style ``messages`` list through the chain."""
        from tripwise.gateway.jsonio import loads
        from tripwise.gateway.validate import BadRequest, check_chat

        body = {"messages": messages, **params}
        body.pop("stream", None)
        try:
            check_chat(body)
        except BadRequest as exc:
            raise ValueError(str(exc)) from None
        out = await self._engine.complete(self._route, body)
        data = loads(out.body)
        if out.status != 200:
            raise RuntimeError(f"every tier failed: {data.get('error', {}).get('message')}")
        from tripwise.gateway.checks import text_of

        return FallbackResult(
            content=text_of(data),
            tier=out.audit.backend,
            completion=data,
            attempts=out.audit.attempts,
            fallback_reasons=list(out.audit.reasons),
            cache_age_seconds=out.audit.cache_age,
        )

    async def generate(self, prompt: str, **params: Any) -> FallbackResult:
        """Answer one user prompt through the chain."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {prompt!r}")
        return await self.chat([{"role": "user", "content": prompt}], **params)

    def get_stats(self) -> dict[str, Any]:
        """Tier usage and each breaker in the seed's ``/circuit-breakers`` shape."""
        from tripwise.observe.snapshot import snapshot

        snap = snapshot(self.registry, chains=[])
        for b in self._runtime.live_backends():
            if b.name in snap["circuit_breakers"]:
                snap["circuit_breakers"][b.name]["total_timeouts"] = b.timeouts
        served = self._engine.stats.served
        return {
            "tier_usage": {t: served.get(("*", t), 0) for t in self.tiers},
            "circuit_breakers": snap["circuit_breakers"],
        }

    async def close(self) -> None:
        for b in self._runtime.live_backends():
            await b.upstream.aclose()

    async def __aenter__(self) -> FallbackChain:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"FallbackChain(tiers={self.tiers!r}, config={self.config!r})"


__all__ = ["CircuitBreakerConfig", "FallbackChain", "FallbackResult"]
