"""tripwise: circuit breakers that trip on model-output quality as well as errors and latency.

Everything a user imports comes from here; the engine lives in :mod:`tripwise.core`.
"""

from tripwise.core import *  # noqa: F403
from tripwise.core import __all__ as _core_all

__version__ = "0.1.0"

__all__ = [*_core_all, "__version__"]
