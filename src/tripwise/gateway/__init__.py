"""The tripwise gateway: an OpenAI-compatible proxy with per-backend quality-aware breakers,
retries and a fallback chain (live backends, cache, degraded message).

``tripwise gateway --config gateway.yaml`` runs it; :func:`create_app` gives the ASGI app.
Needs ``pip install 'tripwise[gateway]'``.
"""

from tripwise.gateway.app import GatewayApp, create_app
from tripwise.gateway.config import ConfigError, GatewayConfig, load_config, parse_config

__all__ = [
    "ConfigError",
    "GatewayApp",
    "GatewayConfig",
    "create_app",
    "load_config",
    "parse_config",
]
