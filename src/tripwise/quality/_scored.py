"""Moved: :class:`ScoredCondition` lives in :mod:`tripwise.core.conditions` (re-exported here so
``from tripwise.quality._scored import ScoredCondition`` keeps working)."""

from __future__ import annotations

from tripwise.core.conditions import ScoredCondition

__all__ = ["ScoredCondition"]
