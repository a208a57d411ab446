"""Quality: scorers that turn model outputs into a score in [0, 1] (higher is better), and
conditions that decide on those scores with statistical care.

Scorers work as a breaker's ``score_fn`` or with :func:`report_quality` inside the call.
A score that arrives after the call returned is attached with :func:`current_call_id` and
``breaker.record_late_quality(call_id, score)``.
"""

from tripwise.core.signals import current_call_id, report_quality
from tripwise.quality.bounds import (
    LowQualityShareAbove,
    QualityMeanBelow,
    low_quality_share_above,
    quality_mean_below,
)
from tripwise.quality.classification import (
    SoftmaxScorer,
    entropy_score,
    margin,
    max_probability,
    softmax,
)
from tripwise.quality.compose import (
    GuardedScore,
    MinOf,
    WeightedMean,
    guarded_score,
    min_of,
    weighted_mean,
)
from tripwise.quality.drift import QualityDrift, quality_drift
from tripwise.quality.embeddings import (
    CentroidSimilarity,
    DriftScore,
    StandardizedDistance,
    drift_score,
    embedding_health,
)
from tripwise.quality.text import (
    DEFAULT_REFUSALS,
    Completion,
    JsonScorer,
    RefusalScorer,
    TextQuality,
    mean_token_probability,
    non_empty,
    not_refused,
    not_truncated,
    parse_completion,
    repetition_score,
    valid_json,
)

__all__ = [
    "DEFAULT_REFUSALS",
    "CentroidSimilarity",
    "Completion",
    "DriftScore",
    "GuardedScore",
    "JsonScorer",
    "LowQualityShareAbove",
    "QualityDrift",
    "QualityMeanBelow",
    "MinOf",
    "RefusalScorer",
    "SoftmaxScorer",
    "StandardizedDistance",
    "TextQuality",
    "WeightedMean",
    "current_call_id",
    "drift_score",
    "embedding_health",
    "entropy_score",
    "guarded_score",
    "low_quality_share_above",
    "margin",
    "max_probability",
    "mean_token_probability",
    "min_of",
    "non_empty",
    "not_refused",
    "not_truncated",
    "parse_completion",
    "quality_drift",
    "quality_mean_below",
    "repetition_score",
    "report_quality",
    "softmax",
    "valid_json",
    "weighted_mean",
]
