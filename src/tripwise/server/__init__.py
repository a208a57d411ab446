"""The tripwise control plane (``pip install tripwise[server]``).

A self-hosted server honouring the Tripswitch SDK wire contract: breakers are defined centrally,
services report samples, the server evaluates every breaker and streams state changes live.

Imports are lazy: ``tripwise.server.evaluator`` (the pure evaluation logic) and
``tripwise.server.settings`` work without the server extra; ``create_app`` needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tripwise.server.app import create_app
    from tripwise.server.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tripwise.server.app import create_app

        return create_app
    if name == "Settings":
        from tripwise.server.settings import Settings

        return Settings
    raise AttributeError(f"module 'tripwise.server' has no attribute {name!r}")
