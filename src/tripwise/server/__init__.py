"""The tripwise control plane (``pip install tripwise[server]``).

A self-hosted server honouring the Tripswitch SDK wire contract: breakers are defined centrally,
services report samples, the server evaluates every breaker and streams state changes live.
"""

from tripwise.server.app import create_app
from tripwise.server.settings import Settings

__all__ = ["Settings", "create_app"]
