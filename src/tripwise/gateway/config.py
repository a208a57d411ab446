"""The gateway's configuration: one YAML file, validated once at start, then frozen.

Every problem found is reported together, each naming the file, the line and the dotted key
(``gateway.yaml:12: backends.max_gpu.timeout: must be a number > 0, got 'fast'``), so an
operator fixes a file in one pass. ``${NAME}`` and ``${NAME:-default}`` in strings read the
environment (for API keys and URLs that differ per deployment).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKEND_TYPES = ("openai", "ollama", "cache", "degraded")
LIVE_TYPES = ("openai", "ollama")
ALL_OPEN_POLICIES = ("degrade", "fail_fast", "wait")
CHECKS = (
    "empty",
    "non_empty",
    "finish_reason",
    "refusal",
    "json",
    "json_schema",
    "tool_args",
    "min_tokens",
    "repetition",
    "logprob",
)
DEFAULT_CHECKS = ("non_empty", "finish_reason", "refusal", "json", "tool_args")
CONDITIONS = (
    "consecutive_failures",
    "error_rate_above",
    "latency_above",
    "latency_quantile_above",
    "slow_call_rate_above",
    "quality_below",
    "low_quality_rate_above",
    "any_of",
    "all_of",
)
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class ConfigError(ValueError):
    """The configuration file is invalid; ``problems`` lists every ``file:line: key: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid gateway configuration:\n  " + "\n  ".join(self.problems))


# ---------------------------------------------------------------------------- frozen config


@dataclass(frozen=True)
class RetryConfig:
    attempts: int = 1  # tries per backend, the first included
    backoff_initial: float = 0.05
    backoff_multiplier: float = 2.0
    backoff_max: float = 1.0
    budget_ratio: float = 0.2  # retries allowed per first attempt (tripwise RetryBudget)
    budget_min_retries: int = 3


@dataclass(frozen=True)
class BreakerConfig:
    trip_on: Any = None  # a spec (mapping) for a tripwise condition; None: 3 consecutive
    half_open_after: float = 30.0
    recovery_threshold: int = 2
    half_open_max_calls: int = 1


@dataclass(frozen=True)
class BackendConfig:
    name: str
    type: str
    line: int = 0
    url: str = ""
    api_key: str | None = None
    model: str | None = None  # upstream model name; None: the one the client asked for
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0  # whole answer (non-streaming) per attempt
    connect_timeout: float = 2.0
    first_byte_timeout: float = 10.0  # streaming: until the first chunk
    stall_timeout: float = 10.0  # streaming: between two chunks
    retry: RetryConfig = field(default_factory=RetryConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    checks: tuple[str, ...] = DEFAULT_CHECKS
    json_schema: Mapping[str, Any] | None = None
    # cache
    store: str = "memory"  # memory | redis
    ttl: float = 300.0
    max_entries: int = 1024
    # degraded
    message: str = "Service temporarily unavailable"

    @property
    def live(self) -> bool:
        return self.type in LIVE_TYPES


@dataclass(frozen=True)
class HoldConfig:
    chars: int = 0
    tokens: int = 0
    ms: float = 0.0

    @property
    def armed(self) -> bool:
        return self.chars > 0 or self.tokens > 0 or self.ms > 0


@dataclass(frozen=True)
class RouteConfig:
    name: str
    chain: tuple[str, ...]
    line: int = 0
    deadline: float = 60.0
    when_all_open: str = "degrade"
    wait_ms: float = 0.0
    hold: HoldConfig = field(default_factory=lambda: HoldConfig(chars=64, ms=1500.0))


@dataclass(frozen=True)
class ShutdownConfig:
    pre_stop_delay: float = 5.0
    drain_timeout: float = 25.0


@dataclass(frozen=True)
class GatewayConfig:
    path: str
    host: str = "127.0.0.1"
    port: int = 8000
    admin_key: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "tripwise-gw"
    shutdown: ShutdownConfig = field(default_factory=ShutdownConfig)
    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    routes: Mapping[str, RouteConfig] = field(default_factory=dict)
    access_log: bool = False

    def route_for(self, model: str | None) -> RouteConfig | None:
        """The route serving ``model``: its own, else the ``"*"`` route (None: no route)."""
        if model is not None and model in self.routes:
            return self.routes[model]
        return self.routes.get("*")


# ---------------------------------------------------------------------------- YAML with lines


class _Located:
    """A YAML tree as plain values plus the line of every key path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        self.problems: list[str] = []
        self._constructor: Any = None

    def line(self, key: tuple[str, ...]) -> int:
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key, 1)

    def problem(self, key: tuple[str, ...], message: str) -> None:
        dotted = ".".join(key) if key else "(top level)"
        self.problems.append(f"{self.path}:{self.line(key)}: {dotted}: {message}")

    def convert(self, node: Any, key: tuple[str, ...]) -> Any:
        import yaml

        self.lines.setdefault(key, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k_node, v_node in node.value:
                k = k_node.value if isinstance(k_node, yaml.ScalarNode) else None
                if not isinstance(k, str):
                    bad = (*key, "?")
                    self.lines[bad] = k_node.start_mark.line + 1
                    self.problem(bad, "keys must be strings")
                    continue
                sub = (*key, k)
                self.lines[sub] = k_node.start_mark.line + 1
                if k in out:
                    self.problem(sub, "duplicate key")
                out[k] = self.convert(v_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(v, (*key, str(i))) for i, v in enumerate(node.value)]
        if self._constructor is None:
            self._constructor = yaml.SafeLoader("")
        value = self._constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            value = self._env(value, key)
        return value

    def _env(self, value: str, key: tuple[str, ...]) -> str:
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            found = os.environ.get(name)
            if found is None:
                if default is None:
                    self.problem(key, f"environment variable {name} is not set")
                    return ""
                return default
            return found

        return _ENV_RE.sub(sub, value)


# ---------------------------------------------------------------------------- field readers


class _Reader:
    def __init__(self, loc: _Located, data: Mapping[str, Any], key: tuple[str, ...]) -> None:
        self.loc, self.data, self.key = loc, data, key

    def unknown(self, allowed: set[str]) -> None:
        for k in self.data:
            if k not in allowed:
                self.loc.problem(
                    (*self.key, k), f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )

    def get(self, name: str, default: Any, check: Callable[[Any], str | None]) -> Any:
        if name not in self.data:
            return default
        value = self.data[name]
        message = check(value)
        if message is not None:
            self.loc.problem((*self.key, name), f"{message}, got {value!r}")
            return default
        return value

    def number(self, name: str, default: float, *, low: float = 0.0, strict: bool = True) -> float:
        def check(v: Any) -> str | None:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or (v <= low if strict else v < low):
                return f"must be a number {'>' if strict else '>='} {low:g}"
            return None

        return float(self.get(name, default, check))

    def integer(self, name: str, default: int, *, low: int = 1, high: int = 2**31) -> int:
        def check(v: Any) -> str | None:
            if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                return f"must be an integer in [{low}, {high}]"
            return None

        return int(self.get(name, default, check))

    def string(self, name: str, default: Any, choices: tuple[str, ...] | None = None) -> Any:
        def check(v: Any) -> str | None:
            if not isinstance(v, str) or (not v and choices is None and default is not None):
                return "must be a non-empty string"
            if choices is not None and v not in choices:
                return f"must be one of {', '.join(choices)}"
            return None

        return self.get(name, default, check)

    def boolean(self, name: str, default: bool) -> bool:
        return bool(
            self.get(name, default, lambda v: None if isinstance(v, bool) else "must be true/false")
        )

    def mapping(self, name: str) -> _Reader:
        value = self.data.get(name, {})
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            self.loc.problem((*self.key, name), f"must be a mapping, got {value!r}")
            value = {}
        return _Reader(self.loc, value, (*self.key, name))


# ---------------------------------------------------------------------------- sections


def _retry(r: _Reader) -> RetryConfig:
    r.unknown({"attempts", "backoff", "budget"})
    b = r.mapping("backoff")
    b.unknown({"initial", "multiplier", "max_delay"})
    g = r.mapping("budget")
    g.unknown({"ratio", "min_retries"})
    initial = b.number("initial", 0.05, strict=False)
    return RetryConfig(
        attempts=r.integer("attempts", 1, low=1, high=10),
        backoff_initial=initial,
        backoff_multiplier=b.number("multiplier", 2.0, low=1.0, strict=False),
        backoff_max=b.number("max_delay", max(1.0, initial), low=initial, strict=False),
        budget_ratio=g.number("ratio", 0.2, strict=False),
        budget_min_retries=g.integer("min_retries", 3, low=0),
    )


def _condition_spec(loc: _Located, value: Any, key: tuple[str, ...]) -> Any:
    """Validate a condition spec by building it once; the built object is thrown away (each
    breaker needs its own conditions), the spec is kept."""
    try:
        build_condition(value)
    except (TypeError, ValueError) as exc:
        loc.problem(key, str(exc))
        return None
    return value


def build_condition(spec: Any) -> Any:
    """A tripwise condition from a spec such as ``{"consecutive_failures": 3}``,
    ``{"error_rate_above": {"rate": 0.5, "window": 20}}`` or ``{"any_of": [spec, ...]}``."""
    import tripwise.core.conditions as cond

    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ValueError("a condition is a mapping with one key, one of " + ", ".join(CONDITIONS))
    ((kind, args),) = spec.items()
    if kind not in CONDITIONS:
        raise ValueError(f"unknown condition {kind!r} (known: {', '.join(CONDITIONS)})")
    factory = getattr(cond, kind)
    if kind in ("any_of", "all_of"):
        if not isinstance(args, list) or not args:
            raise ValueError(f"{kind} takes a non-empty list of conditions")
        return factory(*(build_condition(a) for a in args))
    if isinstance(args, Mapping):
        return factory(**args)
    if isinstance(args, list):
        return factory(*args)
    return factory(args)


def _breaker(r: _Reader) -> BreakerConfig:
    r.unknown(
        {
            "trip_on",
            "failure_threshold",
            "half_open_after",
            "recovery_timeout",
            "recovery_threshold",
            "success_threshold",
            "half_open_max_calls",
        }
    )
    trip_on: Any = None
    if "trip_on" in r.data:
        trip_on = _condition_spec(r.loc, r.data["trip_on"], (*r.key, "trip_on"))
    elif "failure_threshold" in r.data:
        trip_on = {"consecutive_failures": r.integer("failure_threshold", 3)}
    half_open = r.number("half_open_after", r.number("recovery_timeout", 30.0))
    recovery = r.integer("recovery_threshold", r.integer("success_threshold", 2))
    return BreakerConfig(
        trip_on=trip_on,
        half_open_after=half_open,
        recovery_threshold=recovery,
        half_open_max_calls=r.integer("half_open_max_calls", 1),
    )


_COMMON = {"type"}
_LIVE_KEYS = {
    "url",
    "api_key",
    "model",
    "headers",
    "timeout",
    "connect_timeout",
    "first_byte_timeout",
    "stall_timeout",
    "retry",
    "breaker",
    "checks",
    "json_schema",
}
_CACHE_KEYS = {"store", "ttl", "max_entries"}
_DEGRADED_KEYS = {"message"}


def _backend(loc: _Located, name: str, data: Any, key: tuple[str, ...]) -> BackendConfig | None:
    if not isinstance(data, Mapping):
        loc.problem(key, f"a backend must be a mapping, got {data!r}")
        return None
    r = _Reader(loc, data, key)
    kind = r.string("type", None, BACKEND_TYPES)
    if kind is None:
        if "type" not in data:
            loc.problem((*key, "type"), f"missing; one of {', '.join(BACKEND_TYPES)}")
        return None
    line = loc.line(key)
    if kind in LIVE_TYPES:
        r.unknown(_COMMON | _LIVE_KEYS)
        url = r.string("url", None)
        if url is None:
            if "url" not in data:
                loc.problem((*key, "url"), "missing (e.g. http://127.0.0.1:8080/v1)")
            url = ""
        elif not url.startswith(("http://", "https://")):
            loc.problem((*key, "url"), f"must start with http:// or https://, got {url!r}")
        headers = data.get("headers", {}) or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            loc.problem((*key, "headers"), "must map header names to strings")
            headers = {}
        checks = data.get("checks", list(DEFAULT_CHECKS))
        if not isinstance(checks, list) or not all(c in CHECKS for c in checks):
            loc.problem((*key, "checks"), f"must be a list of {', '.join(CHECKS)}, got {checks!r}")
            checks = list(DEFAULT_CHECKS)
        schema = data.get("json_schema")
        if schema is not None and not isinstance(schema, Mapping):
            loc.problem((*key, "json_schema"), "must be a JSON schema (a mapping)")
            schema = None

        timeout = r.number("timeout", 30.0)
        return BackendConfig(
            name=name,
            type=kind,
            line=line,
            url=url.rstrip("/"),
            api_key=r.string("api_key", None),
            model=r.string("model", None),
            headers=dict(headers),
            timeout=timeout,
            connect_timeout=r.number("connect_timeout", min(2.0, timeout)),
            first_byte_timeout=r.number("first_byte_timeout", timeout),
            stall_timeout=r.number("stall_timeout", timeout),
            retry=_retry(r.mapping("retry")),
            breaker=_breaker(r.mapping("breaker")),
            checks=tuple(checks),
            json_schema=schema,
        )
    if kind == "cache":
        r.unknown(_COMMON | _CACHE_KEYS)
        return BackendConfig(
            name=name,
            type=kind,
            line=line,
            store=r.string("store", "memory", ("memory", "redis")),
            ttl=r.number("ttl", 300.0),
            max_entries=r.integer("max_entries", 1024),
        )
    r.unknown(_COMMON | _DEGRADED_KEYS)
    return BackendConfig(
        name=name,
        type=kind,
        line=line,
        message=r.string("message", "Service temporarily unavailable"),
    )


def _route(
    loc: _Located, name: str, data: Any, key: tuple[str, ...], backends: Mapping[str, Any]
) -> RouteConfig | None:
    if not isinstance(data, Mapping):
        loc.problem(key, f"a route must be a mapping, got {data!r}")
        return None
    r = _Reader(loc, data, key)
    r.unknown({"chain", "deadline", "when_all_open", "wait_ms", "hold"})
    chain = data.get("chain")
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        loc.problem((*key, "chain"), f"must be a non-empty list of backend names, got {chain!r}")
        return None
    for i, c in enumerate(chain):
        if c not in backends:
            loc.problem(
                (*key, "chain", str(i)),
                f"unknown backend {c!r} (defined: {', '.join(sorted(backends)) or 'none'})",
            )
    if len(set(chain)) != len(chain):
        loc.problem((*key, "chain"), "a backend appears twice in the chain")
    policy = r.string("when_all_open", "degrade", ALL_OPEN_POLICIES)
    h = r.mapping("hold")
    h.unknown({"chars", "tokens", "ms"})
    hold = HoldConfig(
        chars=h.integer("chars", 64 if "hold" not in data else 0, low=0),
        tokens=h.integer("tokens", 0, low=0),
        ms=h.number("ms", 1500.0 if "hold" not in data else 0.0, strict=False),
    )
    return RouteConfig(
        name=name,
        chain=tuple(chain),
        line=loc.line(key),
        deadline=r.number("deadline", 60.0),
        when_all_open=policy,
        wait_ms=r.number("wait_ms", 1000.0 if policy == "wait" else 0.0, strict=False),
        hold=hold,
    )


def parse_config(text: str, path: str = "gateway.yaml") -> GatewayConfig:
    """Validate ``text`` (YAML) and return the frozen config; raise :class:`ConfigError`."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the gateway needs PyYAML: pip install 'tripwise[gateway]'") from exc

    loc = _Located(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{path}:{line}: (syntax): {exc}"]) from None
    if node is None:
        raise ConfigError([f"{path}:1: (top level): the file is empty"])
    data = loc.convert(node, ())
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}:1: (top level): must be a mapping, got {type(data).__name__}"])
    top = _Reader(loc, data, ())
    top.unknown({"listen", "admin_key", "redis", "shutdown", "backends", "routes", "access_log"})
    listen = top.mapping("listen")
    listen.unknown({"host", "port"})
    redis = top.mapping("redis")
    redis.unknown({"url", "prefix"})
    shutdown = top.mapping("shutdown")
    shutdown.unknown({"pre_stop_delay", "drain_timeout"})

    backends: dict[str, BackendConfig] = {}
    raw_backends = top.mapping("backends").data
    if not raw_backends:
        loc.problem(("backends",), "missing; define at least one backend")
    for name, spec in raw_backends.items():
        if not _NAME_RE.match(name):
            loc.problem(("backends", name), "backend names use letters, digits and _ . : -")
        b = _backend(loc, name, spec, ("backends", name))
        if b is not None:
            backends[name] = b
    routes: dict[str, RouteConfig] = {}
    raw_routes = top.mapping("routes").data
    if not raw_routes:
        loc.problem(("routes",), "missing; map a model name (or '*') to a chain of backends")
    for name, spec in raw_routes.items():
        rt = _route(loc, name, spec, ("routes", name), raw_backends)
        if rt is not None:
            routes[name] = rt
    redis_url = redis.string("url", None)
    for b in backends.values():
        if b.type == "cache" and b.store == "redis" and redis_url is None:
            loc.problem(("backends", b.name, "store"), "store: redis needs redis.url")
    admin_key = top.string("admin_key", None)
    cfg = GatewayConfig(
        path=path,
        host=listen.string("host", "127.0.0.1"),
        port=listen.integer("port", 8000, low=0, high=65535),
        admin_key=admin_key or None,
        redis_url=redis_url,
        redis_prefix=redis.string("prefix", "tripwise-gw"),
        shutdown=ShutdownConfig(
            pre_stop_delay=shutdown.number("pre_stop_delay", 5.0, strict=False),
            drain_timeout=shutdown.number("drain_timeout", 25.0, strict=False),
        ),
        backends=backends,
        routes=routes,
        access_log=top.boolean("access_log", False),
    )
    if loc.problems:
        raise ConfigError(loc.problems)
    return cfg


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and validate the YAML file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}:0: (file): cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}:0: (file): not UTF-8 text: {exc}"]) from None
    return parse_config(text, str(p))
