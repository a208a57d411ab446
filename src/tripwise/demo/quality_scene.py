"""Demo scene: a classifier degrades softly, the quality breaker trips, the fallback answers,
the model heals, probes pass, the breaker closes.

Uses a real scorer (softmax confidence) on real model outputs: a scikit-learn logistic
regression on the digits images when scikit-learn is installed (``tripwise[ml]``), otherwise
a tiny built-in Gaussian classifier in pure Python. Runs on a simulated clock: no sleeping.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, TextIO

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.clock import FakeClock
from tripwise.core.states import State
from tripwise.quality.classification import max_probability
from tripwise.quality.drift import quality_drift

CALLS_PER_SECOND = 10
FALLBACK = "fallback"


class _Model:
    """A model with a switch: ``degraded`` sends it corrupted inputs."""

    name: str

    def __init__(self) -> None:
        self.degraded = False

    def predict(self) -> tuple[int, int, list[float]]:
        """Answer one request: (true label, predicted label, class probabilities)."""
        raise NotImplementedError


class _DigitsModel(_Model):
    name = "scikit-learn LogisticRegression on the digits images (inputs shift 2 px when degraded)"

    def __init__(self, seed: int) -> None:
        super().__init__()
        import numpy as np
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        x, y = load_digits(return_X_y=True)
        x = x / 16.0
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        train, test = order[:900], order[900:]
        shifted = np.roll(x[test].reshape(-1, 8, 8), 2, axis=2).reshape(-1, 64)
        # one BLAS thread: on a busy machine threaded BLAS makes this tiny fit 40x slower
        with threadpool_limits(1):
            clf = LogisticRegression(max_iter=1000).fit(x[train], y[train])
            # the model's real outputs, computed in one batch so the scene runs in a blink
            self.probs = clf.predict_proba(x[test]).tolist()
            self.shifted_probs = clf.predict_proba(shifted).tolist()
        self.y = y[test].tolist()
        self.rng = random.Random(seed)

    def predict(self) -> tuple[int, int, list[float]]:
        i = self.rng.randrange(len(self.y))
        probs = (self.shifted_probs if self.degraded else self.probs)[i]
        return self.y[i], max(range(len(probs)), key=probs.__getitem__), probs


class _TinyModel(_Model):
    name = "built-in 3-class Gaussian classifier (inputs drift toward the class boundary)"
    centers = ((0.0, 0.0), (4.0, 0.0), (0.0, 4.0))

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)

    def predict(self) -> tuple[int, int, list[float]]:
        label = self.rng.randrange(3)
        cx, cy = self.centers[label]
        if self.degraded:  # a broken sensor: inputs pulled toward the middle, extra noise
            cx, cy = 0.3 * cx + 0.7 * 4.0 / 3.0, 0.3 * cy + 0.7 * 4.0 / 3.0
        spread = 1.2 if self.degraded else 0.9
        x, y = self.rng.gauss(cx, spread), self.rng.gauss(cy, spread)
        logits = [-((x - a) ** 2 + (y - b) ** 2) / 2.0 for a, b in self.centers]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        probs = [e / total for e in exps]
        return label, max(range(3), key=probs.__getitem__), probs


def _make_model(seed: int) -> _Model:
    try:
        return _DigitsModel(seed)
    except ImportError:
        return _TinyModel(seed)


def run(out: TextIO, *, fast: bool = True, model: _Model | None = None) -> None:
    """Print the timeline of a quality incident and its recovery to ``out``."""
    model = model if model is not None else _make_model(seed=7)
    clock = FakeClock(0.0)
    start = clock()
    seen: list[tuple[float, str]] = []

    def stamp() -> str:
        return f"t={clock() - start:6.1f}s"

    def on_change(breaker: CircuitBreaker, old: State, new: State) -> None:
        seen.append((clock(), new.value))
        out.write(f"{stamp()}  breaker {old.value} -> {new.value}\n")

    breaker = CircuitBreaker(
        quality_drift(shift=0.1, warmup=200, max_warmup=300),
        name="classifier",
        score_fn=lambda r: max_probability(r[2]),
        fallback=lambda: FALLBACK,
        half_open_after=20.0,
        recovery_threshold=3,
        on_state_change=on_change,
        clock=clock,
        registry=None,
    )
    classify: Callable[[], Any] = breaker(model.predict)

    out.write("Scene 2: a real model (softmax confidence scored by tripwise.quality)\n")
    out.write(f"model: {model.name}\n")
    out.write(
        "breaker: quality_drift() on softmax confidence (max_probability), "
        "1 expected false trip per million healthy calls at most\n\n"
    )
    phases = [
        ("healthy traffic", False, 400),
        ("soft failure begins", True, 400),
        ("model fixed", False, 600),
    ]
    if not fast:
        phases = [(name, bad, n * 3) for name, bad, n in phases]
    for title, degraded, calls in phases:
        model.degraded = degraded
        out.write(f"{stamp()}  -- {title} --\n")
        served = fallback = wrong = 0
        scores: list[float] = []
        for i in range(1, calls + 1):
            result = classify()
            if result == FALLBACK:
                fallback += 1
            else:
                served += 1
                truth, label, probs = result
                scores.append(max(probs))
                wrong += label != truth
            clock.advance(1.0 / CALLS_PER_SECOND)
            if i % 100 == 0:
                mean = f"{sum(scores) / len(scores):.2f}" if scores else " -  "
                out.write(
                    f"{stamp()}  last 100 calls: {served:3d} answered by the model "
                    f"(mean confidence {mean}, {wrong} wrong), {fallback:3d} by the fallback; "
                    f"state {breaker.state.value}\n"
                )
                served = fallback = wrong = 0
                scores = []
    stats = breaker.stats()
    out.write(
        f"\nsummary: {stats.trip_count} trip(s), {stats.rejected} calls answered by the "
        f"fallback, breaker {stats.state.value}\n"
    )
