"""What a state store is, and what a shared store does when its backend is unreachable.

A store decides where a breaker's state lives. The breaker keeps a copy in memory and consults
its store only on the slow path (see :mod:`tripwise.core.shared` for the hook); the CLOSED hot
path never touches it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from tripwise.core.shared import SharedState, StateLink, StateStore

__all__ = ["SharedState", "StateLink", "StateStore", "UnavailablePolicy", "check_policy"]


class UnavailablePolicy(str, Enum):
    """What breakers do while their shared store is unreachable.

    - ``LOCAL``: keep working on local state (trip, probe and recover in this process alone);
      a trip made meanwhile and still in effect is pushed to the fleet when the store returns,
      unless the fleet's state moved on during the outage (then the fleet's state wins).
    - ``FAIL_OPEN``: admit every call (the breaker acts closed, does not trip and counts no
      trips).
    - ``FAIL_CLOSED``: reject every call (the breaker acts open).
    """

    LOCAL = "local"
    FAIL_OPEN = "fail_open"
    FAIL_CLOSED = "fail_closed"


def check_policy(value: Any) -> UnavailablePolicy:
    try:
        return UnavailablePolicy(value)
    except ValueError:
        allowed = ", ".join(repr(p.value) for p in UnavailablePolicy)
        raise ValueError(f"on_unavailable must be one of {allowed}, got {value!r}") from None
