"""Resilience policies around the breaker: timeouts, retries, fallback chains, health checks.

The order in which they stack, outermost first, is documented in
:mod:`tripwise.policies.compose`: fallback → retry → breaker → quality check → timeout → call.
"""

from tripwise.policies.cache import CacheBackend, MemoryCache
from tripwise.policies.chain import ChainResult, FallbackChain, all_chains, default_key
from tripwise.policies.compose import Policy, compose
from tripwise.policies.errors import CacheMiss, CallTimeout, ChainExhausted, RejectedAnswer
from tripwise.policies.health import HealthChecker, HealthStatus, get_health_checker
from tripwise.policies.retry import Backoff, Retry, RetryBudget, retry_after_of
from tripwise.policies.sleeping import FakeSleeper
from tripwise.policies.tiers import CacheTier, DegradedTier, Tier
from tripwise.policies.timeout import Timeout, remaining_time

__all__ = [
    "Backoff",
    "CacheBackend",
    "CacheMiss",
    "CacheTier",
    "CallTimeout",
    "ChainExhausted",
    "ChainResult",
    "DegradedTier",
    "FakeSleeper",
    "FallbackChain",
    "HealthChecker",
    "HealthStatus",
    "MemoryCache",
    "Policy",
    "RejectedAnswer",
    "Retry",
    "RetryBudget",
    "Tier",
    "Timeout",
    "all_chains",
    "compose",
    "default_key",
    "get_health_checker",
    "remaining_time",
    "retry_after_of",
]
