"""Scorers for embedding vectors: is this vector usable, and does it look like the good ones?

Broken embedding services rarely raise: they return NaNs, all-zero vectors, vectors of the wrong
scale, or vectors from another model (after a silent deployment). Non-finite values are what
these scorers exist to catch, so an embedding containing NaN or inf scores 0.0 instead of
raising; reference samples given to ``fit`` must be finite.
"""

from __future__ import annotations

import bisect
import logging
import math
from typing import Any

from tripwise.quality._inputs import clip01, to_rows, to_vector

logger = logging.getLogger("tripwise.quality")

try:  # NumPy makes drift scores of large batches fast; the pure-Python path gives the same numbers
    import numpy as _np
except ImportError:  # pragma: no cover - exercised on installs without the ml extra
    _HAS_NUMPY = False
else:
    _HAS_NUMPY = True


def _norm(v: list[float]) -> float:
    """Euclidean norm, scaled first so huge components cannot overflow the squares."""
    top = max(abs(x) for x in v)
    if top == 0.0 or not math.isfinite(top):
        return top
    return top * math.sqrt(math.fsum((x / top) ** 2 for x in v))


def _all_finite(v: list[float]) -> bool:
    return all(math.isfinite(x) for x in v)


def _check_range(min_norm: float, max_norm: float | None) -> tuple[float, float | None]:
    if (
        isinstance(min_norm, bool)
        or not isinstance(min_norm, (int, float))
        or not (math.isfinite(min_norm) and min_norm >= 0.0)
    ):
        raise ValueError(f"min_norm must be a finite number >= 0, got {min_norm!r}")
    if max_norm is not None and (
        isinstance(max_norm, bool)
        or not isinstance(max_norm, (int, float))
        or not (math.isfinite(max_norm) and max_norm > min_norm)
    ):
        raise ValueError(
            f"max_norm must be a finite number > min_norm ({min_norm}), got {max_norm!r}"
        )
    return float(min_norm), (None if max_norm is None else float(max_norm))


def embedding_health(
    vector: Any, *, min_norm: float = 1e-6, max_norm: float | None = None
) -> float:
    """1.0 for a usable embedding, 0.0 for one with a non-finite value, a (near-)zero norm
    (below ``min_norm``) or a norm above ``max_norm`` (e.g. 1.01 for unit-normalised models)."""
    lo, hi = _check_range(min_norm, max_norm)
    v = to_vector(vector, "embedding", finite=False)
    if not _all_finite(v):
        return 0.0
    n = _norm(v)
    if n < lo or n == 0.0 or (hi is not None and n > hi):
        return 0.0
    return 1.0


class CentroidSimilarity:
    """Cosine similarity of an embedding to the centroid of known-good samples.

    ``fit`` takes embeddings you trust (a few hundred from a healthy deployment); each is
    normalised to unit length before averaging, so the centroid describes direction only.
    The score is the cosine similarity, with negative similarities (pointing away from the
    good ones) scored 0.0. Detects embeddings from another model or a corrupted input pipeline.
    """

    def __init__(self, reference: Any | None = None) -> None:
        self.centroid: list[float] | None = None
        if reference is not None:
            self.fit(reference)

    def fit(self, samples: Any) -> CentroidSimilarity:
        rows = to_rows(samples, "reference samples")
        dim = len(rows[0])
        total = [0.0] * dim
        for i, row in enumerate(rows):
            n = _norm(row)
            if n == 0.0:
                raise ValueError(
                    f"reference samples[{i}] is an all-zero vector; it has no direction"
                )
            for j, x in enumerate(row):
                total[j] += x / n
        norm = _norm(total)
        if norm == 0.0:
            raise ValueError("reference samples cancel out (their centroid is zero); no direction")
        if norm / len(rows) < 0.3:
            logger.warning(
                "CentroidSimilarity: the reference embeddings share little direction (mean "
                "resultant length %.2f): they look mean-centred, and healthy ones will score "
                "low or 0; use StandardizedDistance for such embeddings",
                norm / len(rows),
            )
        self.centroid = [x / norm for x in total]
        return self

    def __call__(self, embedding: Any) -> float:
        if self.centroid is None:
            raise RuntimeError("CentroidSimilarity is not fitted: call fit(known_good_samples)")
        v = to_vector(embedding, "embedding", finite=False)
        if len(v) != len(self.centroid):
            raise ValueError(
                f"embedding has {len(v)} dimensions, the reference centroid has "
                f"{len(self.centroid)}"
            )
        if not _all_finite(v):
            return 0.0
        n = _norm(v)
        if n == 0.0:
            return 0.0
        cos = math.fsum((a / n) * b for a, b in zip(v, self.centroid, strict=True))
        return clip01(max(0.0, min(1.0, cos)))

    def __repr__(self) -> str:
        dim = "unfitted" if self.centroid is None else f"dim={len(self.centroid)}"
        return f"CentroidSimilarity({dim})"


class StandardizedDistance:
    """How typical an embedding is of known-good ones, as a calibrated score in [0, 1].

    Works on any embeddings, mean-centred ones included (PCA, whitened, or models whose
    outputs average to zero, where a cosine to the centroid means nothing). ``fit`` takes a
    few hundred trusted embeddings: half of them give the centre and per-dimension spread,
    the other half the distribution of healthy distances to that centre, in spread units.
    A new embedding's distance is then ranked among the healthy ones: the score is the
    two-sided tail probability ``2 * min(F(d), 1 - F(d))`` (``F`` the healthy distances'
    empirical distribution), so healthy embeddings score uniformly in [0, 1] (mean 0.5)
    whatever the model, and embeddings too far from the centre (noise, another model) or too
    close to it (an all-zero vector, a constant output) score near 0. With
    ``two_sided=False`` only too-far counts: ``1 - F(d)``.

    Never raises on the embedding it scores: NaN/inf values, a wrong dimension or a value that
    is not a vector score 0.0 (the reason is logged at debug level).
    """

    def __init__(self, reference: Any | None = None, *, two_sided: bool = True) -> None:
        self.two_sided = bool(two_sided)
        self.centre: list[float] | None = None
        self.scale: list[float] | None = None
        self.distances: list[float] = []
        if reference is not None:
            self.fit(reference)

    def fit(self, samples: Any) -> StandardizedDistance:
        rows = to_rows(samples, "reference samples")
        if len(rows) < 20:
            raise ValueError(
                f"reference samples need at least 20 embeddings (half for the centre, half for "
                f"the healthy distances), got {len(rows)}"
            )
        centre_rows, ranked_rows = rows[0::2], rows[1::2]
        mean, var = _mean_var(centre_rows)
        self.centre = mean
        self.scale = [
            max(math.sqrt(v), 1e-12 * (1.0 + abs(m))) for m, v in zip(mean, var, strict=True)
        ]
        self.distances = sorted(self._distance(r) for r in ranked_rows)
        return self

    def _distance(self, v: list[float]) -> float:
        assert self.centre is not None and self.scale is not None
        total = math.fsum(
            ((x - m) / s) ** 2 for x, m, s in zip(v, self.centre, self.scale, strict=True)
        )
        return math.sqrt(total / len(v))

    def __call__(self, embedding: Any) -> float:
        if self.centre is None:
            raise RuntimeError("StandardizedDistance is not fitted: call fit(known_good_samples)")
        try:
            v = to_vector(embedding, "embedding", finite=False)
        except (TypeError, ValueError) as exc:
            logger.debug("StandardizedDistance: score 0.0: %s", exc)
            return 0.0
        if len(v) != len(self.centre):
            logger.debug(
                "StandardizedDistance: score 0.0: embedding has %d dimensions, the reference %d",
                len(v),
                len(self.centre),
            )
            return 0.0
        if not _all_finite(v):
            logger.debug("StandardizedDistance: score 0.0: embedding has a non-finite value")
            return 0.0
        try:
            d = self._distance(v)
        except OverflowError:  # values near 1e308: as far from the reference as can be
            return 0.0
        if not math.isfinite(d):
            return 0.0
        m = len(self.distances)
        below = bisect.bisect_left(self.distances, d)
        equal = bisect.bisect_right(self.distances, d) - below
        cdf = (below + 0.5 * equal + 0.5) / (m + 1)  # mid-rank, kept off 0 and 1
        tail = 1.0 - cdf
        score = 2.0 * min(cdf, tail) if self.two_sided else tail
        return clip01(min(1.0, score))

    def __repr__(self) -> str:
        dim = "unfitted" if self.centre is None else f"dim={len(self.centre)}"
        return f"StandardizedDistance({dim}, two_sided={self.two_sided})"


class DriftScore:
    """How much a batch of vectors has drifted from a reference sample: 1.0 = no drift.

    Per dimension, the batch mean is compared with the reference mean in units of the
    reference standard deviation; ``d`` is the root mean square of these standardised
    differences, minus what sampling noise alone would give (so same-distribution batches
    score close to 1 whatever their size). The score is ``exp(-d)``: a shift of half a
    standard deviation in every dimension scores 0.61, one standard deviation 0.37.
    Rows can be embeddings or any numeric feature vectors; a 1-D batch is a batch of scalars.
    """

    def __init__(self, reference: Any | None = None) -> None:
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.count = 0
        if reference is not None:
            self.fit(reference)

    def fit(self, reference: Any) -> DriftScore:
        rows = _batch_rows(reference, "reference sample")
        if len(rows) < 2:
            raise ValueError("reference sample needs at least 2 rows to estimate a spread")
        mean, var = _mean_var(rows)
        scale = [max(math.sqrt(v), 1e-9 * (1.0 + abs(m))) for m, v in zip(mean, var, strict=True)]
        self.mean, self.std, self.count = mean, scale, len(rows)
        return self

    def __call__(self, batch: Any) -> float:
        if self.mean is None or self.std is None:
            raise RuntimeError("DriftScore is not fitted: call fit(reference_sample)")
        rows = _batch_rows(batch, "batch")
        if len(rows[0]) != len(self.mean):
            raise ValueError(
                f"batch rows have {len(rows[0])} values, the reference has {len(self.mean)}"
            )
        if not all(_all_finite(r) for r in rows):
            return 0.0
        batch_mean, _ = _mean_var(rows)
        z2 = math.fsum(
            ((b - m) / s) ** 2 for b, m, s in zip(batch_mean, self.mean, self.std, strict=True)
        ) / len(self.mean)
        noise = 1.0 / len(rows) + 1.0 / self.count
        d = math.sqrt(max(0.0, z2 - noise))
        return clip01(math.exp(-d))

    def __repr__(self) -> str:
        dim = "unfitted" if self.mean is None else f"dim={len(self.mean)}, n={self.count}"
        return f"DriftScore({dim})"


def drift_score(batch: Any, reference: Any) -> float:
    """One-off :class:`DriftScore` of ``batch`` against ``reference`` (fit it once to reuse)."""
    return DriftScore(reference)(batch)


def _batch_rows(x: Any, what: str) -> list[list[float]]:
    rows = to_rows(x, what, finite=(what != "batch"))
    if len(rows) == 1 and len(rows[0]) > 1 and not _is_2d(x):
        return [[v] for v in rows[0]]  # a flat batch of scalars
    return rows


def _is_2d(x: Any) -> bool:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return len(shape) == 2
    try:
        first = next(iter(x))
    except (TypeError, StopIteration):
        return False
    return not isinstance(first, (int, float))


def _mean_var(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    n = len(rows)
    if _HAS_NUMPY and n * len(rows[0]) > 4096:
        arr = _np.asarray(rows, dtype=float)
        return arr.mean(axis=0).tolist(), arr.var(axis=0).tolist()
    cols = list(zip(*rows, strict=True))
    means = [math.fsum(c) / n for c in cols]
    var = [math.fsum((x - m) ** 2 for x in c) / n for c, m in zip(cols, means, strict=True)]
    return means, var
