"""Quality: scorers that turn model outputs into a score in [0, 1] (higher is better), and
conditions that decide on those scores with statistical care.

Scorers work as a breaker's ``score_fn`` or with :func:`report_quality` inside the call.
"""

from tripwise.core.signals import report_quality
from tripwise.quality.classification import (
    SoftmaxScorer,
    entropy_score,
    margin,
    max_probability,
    softmax,
)
from tripwise.quality.compose import MinOf, WeightedMean, min_of, weighted_mean
from tripwise.quality.embeddings import (
    CentroidSimilarity,
    DriftScore,
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
    "JsonScorer",
    "MinOf",
    "RefusalScorer",
    "SoftmaxScorer",
    "TextQuality",
    "WeightedMean",
    "drift_score",
    "embedding_health",
    "entropy_score",
    "margin",
    "max_probability",
    "mean_token_probability",
    "min_of",
    "non_empty",
    "not_refused",
    "not_truncated",
    "parse_completion",
    "repetition_score",
    "report_quality",
    "softmax",
    "valid_json",
    "weighted_mean",
]
