"""APIs of the seed systems that do not fit the native API, built on the same engine."""

from typing import Any

_PLATFORM = {"FallbackChain", "FallbackResult"}


def __getattr__(name: str) -> Any:
    # The seed platform's FallbackChain (compat/platform.py) needs the gateway extra; it is
    # imported on first use so ``import tripwise.compat`` stays dependency-free.
    if name in _PLATFORM:
        from tripwise.compat import platform

        return getattr(platform, name)
    if name == "CircuitBreakerConfig":
        from tripwise.compat.classic import CircuitBreakerConfig

        return CircuitBreakerConfig
    raise AttributeError(f"module 'tripwise.compat' has no attribute {name!r}")
