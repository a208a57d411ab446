"""Quality detection on a real model: how fast each breaker catches a soft failure, how often
it trips on healthy traffic, and how fast it recovers.

A scikit-learn logistic regression is trained on the digits images that ship with
scikit-learn (no download) and served behind several breakers side by side, all fed the same
stream of calls on one simulated clock (10 calls/s):

1. healthy traffic (held-out digits),
2. a soft failure: the camera shifts by 2 pixels; the model still answers every call, mostly
   wrong but often confidently,
3. recovery: healthy inputs again.

Every quality breaker scores the softmax confidence (``tripwise.quality.max_probability``).
Then each breaker configuration sees >= 1,000,000 healthy calls whose scores are drawn from
the recorded healthy score distribution, to count false trips.

Run:  python bench/quality_detection.py            (add --healthy-calls 100000 for a quick run)
Needs the ml and dev extras: pip install -e '.[dev,ml]' (ml-breaker 0.1.1 is a dev extra).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import ml_breaker
import ml_breaker._breaker as ml_breaker_module
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from tripwise import CircuitBreaker, FakeClock
from tripwise.quality import (
    SoftmaxScorer,
    low_quality_share_above,
    quality_drift,
    quality_mean_below,
)

CALL_INTERVAL = 0.1  # seconds of simulated time between calls
HALF_OPEN_AFTER = 30.0
RECOVERY_THRESHOLD = 3
FALLBACK = "fallback"
LEAD_IN = 5000  # healthy calls before a degradation: quality_drift()'s warmup is up to 5,000


# ------------------------------------------------------------------ the model


@dataclass
class Model:
    clf: LogisticRegression
    healthy_x: np.ndarray
    healthy_y: np.ndarray
    shifted_x: np.ndarray

    def predict(self, x: np.ndarray) -> tuple[int, list[float]]:
        probs = self.clf.predict_proba(x.reshape(1, -1))[0]
        return int(probs.argmax()), probs.tolist()


def train(seed: int) -> Model:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, random_state=seed, stratify=y
    )
    with threadpool_limits(1):  # threaded BLAS only slows this small fit down
        clf = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    shifted = np.roll(x_test.reshape(-1, 8, 8), 2, axis=2).reshape(-1, 64)
    return Model(clf, x_test, y_test, shifted)


# ------------------------------------------------------------------ the breakers under test


class PatchedTime(types.SimpleNamespace):
    """ml-breaker reads time.monotonic() directly; give it the shared simulated clock."""


@dataclass
class Lane:
    name: str
    call: Callable[[Callable[[], Any]], Any]
    state: Callable[[], str]
    trips: Callable[[], int]
    states: list[str] = field(default_factory=list)


def tripwise_lane(name: str, trip_on: Any, clock: FakeClock, score_fn: Any) -> Lane:
    breaker = CircuitBreaker(
        trip_on,
        score_fn=score_fn,
        fallback=FALLBACK,
        half_open_after=HALF_OPEN_AFTER,
        recovery_threshold=RECOVERY_THRESHOLD,
        clock=clock,
        registry=None,
    )
    return Lane(
        name,
        breaker.call,
        lambda: breaker.state.value,
        lambda: breaker.trip_count,
    )


_ml_names = iter(range(1_000_000))


def ml_breaker_lane(name: str, threshold: float, window: int, score_fn: Any) -> Lane:
    wrapped = ml_breaker.circuit_breaker(
        trip_on=ml_breaker.quality_below(threshold, window=window, score_fn=score_fn),
        fallback=FALLBACK,
        half_open_after=HALF_OPEN_AFTER,
        recovery_threshold=RECOVERY_THRESHOLD,
        name=f"bench-{next(_ml_names)}",
    )(lambda fn: fn())
    cb = wrapped.breaker
    return Lane(name, wrapped, lambda: cb.state.value, lambda: cb.trip_count)


CONFIGS: list[tuple[str, Callable[[FakeClock, Any], Lane]]] = [
    (
        "tripwise quality_drift() (default)",
        lambda c, s: tripwise_lane("tripwise quality_drift()", quality_drift(), c, s),
    ),
    (
        "tripwise quality_mean_below(0.8)",
        lambda c, s: tripwise_lane(
            "tripwise quality_mean_below(0.8)", quality_mean_below(0.8), c, s
        ),
    ),
    (
        "tripwise low_quality_share_above(0.2, 0.7)",
        lambda c, s: tripwise_lane(
            "tripwise low_quality_share_above(0.2, 0.7)", low_quality_share_above(0.2, 0.7), c, s
        ),
    ),
    (
        "ml-breaker quality_below(0.8, window=20)",
        lambda c, s: ml_breaker_lane("ml-breaker quality_below(0.8)", 0.8, 20, s),
    ),
    (
        "ml-breaker quality_below(0.7, window=20)",
        lambda c, s: ml_breaker_lane("ml-breaker quality_below(0.7)", 0.7, 20, s),
    ),
    (
        "error-only breaker (consecutive_failures(5))",
        lambda c, s: tripwise_lane("error-only", None, c, None),
    ),
]


# ------------------------------------------------------------------ scenario


@dataclass
class Outcome:
    served_before_trip: int | None = None  # degraded calls the model answered before the trip
    open_at_onset: bool = False  # already open (from a false trip) when the degradation began
    wrong_served: int = 0  # wrong answers served to users during the degradation
    false_trips_stream: int = 0  # trips during the healthy phase of the scenario
    recovery_s: float | None = None
    false_trips_sim: int = 0
    sim_calls: int = 0
    sim_seconds: float = 0.0


def run_scenario(
    model: Model, lanes: list[Lane], clock: FakeClock, phases: tuple[int, int, int], seed: int
):
    rng = np.random.default_rng(seed)
    healthy, degraded, recovery = phases
    total = healthy + degraded + recovery
    qualities: list[float] = []
    outcomes = [Outcome() for _ in lanes]
    degraded_answers = [0] * len(lanes)
    for i in range(total):
        phase = 0 if i < healthy else 1 if i < healthy + degraded else 2
        j = int(rng.integers(len(model.healthy_y)))
        x = model.shifted_x[j] if phase == 1 else model.healthy_x[j]
        truth = int(model.healthy_y[j])
        label, probs = model.predict(x)
        qualities.append(max(probs))
        for k, lane in enumerate(lanes):
            trips_before = lane.trips()
            result = lane.call(lambda label=label, probs=probs: (label, probs))
            tripped = lane.trips() > trips_before
            served = result != FALLBACK
            out = outcomes[k]
            if phase == 0 and tripped:
                out.false_trips_stream += 1
            if phase == 1:
                if i == healthy and lane.states[-1] != "closed":
                    out.open_at_onset = True
                if served:
                    degraded_answers[k] += 1
                    if result[0] != truth:
                        out.wrong_served += 1
                if (tripped or lane.state() != "closed") and out.served_before_trip is None:
                    out.served_before_trip = degraded_answers[k]
            lane.states.append(lane.state())
        clock.advance(CALL_INTERVAL)
    start = healthy + degraded
    for k, lane in enumerate(lanes):
        out = outcomes[k]
        if out.served_before_trip is None:
            continue  # never tripped: nothing to recover from
        last_not_closed = max(
            (i for i in range(start, total) if lane.states[i] != "closed"), default=start - 1
        )
        if lane.states[-1] != "closed":
            out.recovery_s = None
        else:
            out.recovery_s = (last_not_closed + 1 - start) * CALL_INTERVAL
    return qualities, outcomes


def simulate_false_trips(
    make: Callable[[FakeClock, Any], Lane], scores: list[float]
) -> tuple[int, float]:
    """Feed bootstrapped healthy scores through a fresh breaker; count its trips."""
    clock = FakeClock()
    ml_breaker_module.time = PatchedTime(monotonic=clock)
    lane = make(clock, lambda r: r)
    call = lane.call
    t0 = time.perf_counter()
    for s in scores:
        call(lambda s=s: s)
        clock.advance(CALL_INTERVAL)
    return lane.trips(), time.perf_counter() - t0


def onset_delays(
    make: Callable[[FakeClock, Any], Lane],
    healthy: np.ndarray,
    degraded: np.ndarray,
    repeats: int,
    seed: int,
) -> list[int]:
    """Degraded calls served before the trip, over ``repeats`` fresh onsets (scores drawn from
    the recorded healthy and degraded distributions; 5,000 healthy calls lead in each time, the
    longest warmup ``quality_drift()`` may take)."""
    rng = np.random.default_rng(seed)
    delays = []
    for _ in range(repeats):
        clock = FakeClock()
        ml_breaker_module.time = PatchedTime(monotonic=clock)
        lane = make(clock, lambda r: r)
        for s in rng.choice(healthy, size=LEAD_IN).tolist():
            lane.call(lambda s=s: s)
            clock.advance(CALL_INTERVAL)
        served = 0
        for s in rng.choice(degraded, size=2000).tolist():
            if lane.state() != "closed":
                break
            if lane.call(lambda s=s: s) != FALLBACK:
                served += 1
            clock.advance(CALL_INTERVAL)
        delays.append(served)
    return delays


# ------------------------------------------------------------------ report


def plot(
    path: Path, qualities: list[float], lanes: list[Lane], phases: tuple[int, int, int]
) -> None:
    healthy, degraded, _ = phases
    t = np.arange(len(qualities)) * CALL_INTERVAL
    fig, (ax, lanes_ax) = plt.subplots(
        2, 1, figsize=(12, 7), sharex=True, gridspec_kw={"height_ratios": [2.2, 1.8]}
    )
    ax.scatter(t, qualities, s=2, alpha=0.35, color="tab:blue", label="softmax confidence per call")
    window = 50
    rolling = np.convolve(qualities, np.ones(window) / window, mode="valid")
    ax.plot(t[window - 1 :], rolling, color="black", lw=1.2, label=f"rolling mean ({window} calls)")
    t_deg, t_rec = healthy * CALL_INTERVAL, (healthy + degraded) * CALL_INTERVAL
    for a in (ax, lanes_ax):
        a.axvspan(t_deg, t_rec, color="tab:red", alpha=0.08)
    ax.text(t_deg + 2, 0.03, "soft failure: inputs shifted 2 px", color="tab:red", fontsize=9)
    ax.set_ylabel("quality score")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Digits classifier behind breakers: quality stream, trips and recoveries")
    colors = {"closed": "tab:green", "open": "tab:red", "half_open": "tab:orange"}
    for row, lane in enumerate(lanes):
        y = len(lanes) - 1 - row
        start = 0
        states = lane.states
        for i in range(1, len(states) + 1):
            if i == len(states) or states[i] != states[start]:
                lanes_ax.barh(
                    y,
                    (i - start) * CALL_INTERVAL,
                    left=start * CALL_INTERVAL,
                    color=colors[states[start]],
                    height=0.6,
                )
                start = i
        trips = [
            i for i in range(1, len(states)) if states[i] == "open" and states[i - 1] == "closed"
        ]
        closes = [
            i for i in range(1, len(states)) if states[i] == "closed" and states[i - 1] != "closed"
        ]
        lanes_ax.scatter(
            np.array(trips) * CALL_INTERVAL,
            [y + 0.4] * len(trips),
            marker="v",
            color="darkred",
            s=25,
            zorder=3,
        )
        lanes_ax.scatter(
            np.array(closes) * CALL_INTERVAL,
            [y + 0.4] * len(closes),
            marker="^",
            color="darkgreen",
            s=25,
            zorder=3,
        )
        for i in trips:
            ax.axvline(i * CALL_INTERVAL, color="darkred", lw=0.6, alpha=0.25)
    lanes_ax.set_yticks(range(len(lanes)), [lane.name for lane in reversed(lanes)], fontsize=8)
    lanes_ax.set_xlabel(
        "simulated time (s), 10 calls/s   (green closed, red open, orange half-open; "
        "▼ trip, ▲ recovery)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--healthy-calls",
        type=int,
        default=1_000_000,
        help="simulated healthy calls per breaker for the false-trip count",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--onsets",
        type=int,
        default=100,
        help="repeated degradation onsets for the detection-delay distribution",
    )
    parser.add_argument("--plot", type=Path, default=Path("docs/img/quality_detection.png"))
    args = parser.parse_args(argv)
    logging.getLogger("ml_breaker").setLevel(logging.ERROR)  # it warns on every trip

    model = train(args.seed)
    threadpool_limits(1)  # per-call predict_proba on one row: threads are pure overhead
    phases = (LEAD_IN, 1000, 4000)  # healthy, degraded, recovered (calls)
    clock = FakeClock()
    ml_breaker_module.time = PatchedTime(monotonic=clock)
    scorer = SoftmaxScorer("max_probability", extract=lambda r: r[1])
    lanes = [make(clock, scorer) for _, make in CONFIGS]
    qualities, outcomes = run_scenario(model, lanes, clock, phases, args.seed)
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(args.plot, qualities, lanes, phases)

    healthy_scores = np.array(qualities[: phases[0]])
    deg = np.array(qualities[phases[0] : phases[0] + phases[1]])
    rng = np.random.default_rng(args.seed + 1)
    sim = rng.choice(healthy_scores, size=args.healthy_calls).tolist()
    delays: list[list[int]] = []
    for (_, make), out in zip(CONFIGS, outcomes, strict=True):
        out.false_trips_sim, out.sim_seconds = simulate_false_trips(make, sim)
        out.sim_calls = args.healthy_calls
        delays.append(onset_delays(make, healthy_scores, deg, args.onsets, args.seed + 2))

    acc_h = float((model.clf.predict(model.healthy_x) == model.healthy_y).mean())
    acc_d = float((model.clf.predict(model.shifted_x) == model.healthy_y).mean())
    print(
        f"model: LogisticRegression on sklearn digits; accuracy healthy {acc_h:.1%}, "
        f"shifted {acc_d:.1%}"
    )
    print(
        f"softmax confidence: healthy mean {healthy_scores.mean():.3f} "
        f"(sd {healthy_scores.std():.3f}), "
        f"degraded mean {deg.mean():.3f} (sd {deg.std():.3f})"
    )
    print(
        f"stream: {phases[0]} healthy, {phases[1]} degraded, {phases[2]} recovered calls at "
        f"10 calls/s; half_open_after={HALF_OPEN_AFTER:g}s, recovery_threshold={RECOVERY_THRESHOLD}"
    )
    print()
    per_m = 1_000_000 / args.healthy_calls
    print(
        "| breaker | degraded calls served before trip | "
        f"same, over {args.onsets} onsets: median / p95 / max | wrong answers served during "
        f"degradation (of {phases[1]}) | false trips in stream | false trips per million healthy "
        "calls | recovery time after the model heals | wall time of the false-trip run |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (name, _), out, d in zip(CONFIGS, outcomes, delays, strict=True):
        served = "never trips" if out.served_before_trip is None else str(out.served_before_trip)
        if out.open_at_onset:
            served += " (already open after a false trip)"
        d_sorted = sorted(d)
        if d_sorted[0] >= 2000:
            spread = "never trips"
        else:
            p95 = d_sorted[max(0, math.ceil(0.95 * len(d)) - 1)]
            spread = f"{d_sorted[len(d) // 2]} / {p95} / {d_sorted[-1]}"
        if out.served_before_trip is None:
            rec = "n/a"
        elif out.recovery_s is None:
            rec = f"not recovered after {phases[2] * CALL_INTERVAL:.0f} s"
        else:
            rec = f"{out.recovery_s:.1f} s"
        print(
            f"| {name} | {served} | {spread} | {out.wrong_served} | {out.false_trips_stream} | "
            f"{out.false_trips_sim * per_m:,.0f} | {rec} | {out.sim_seconds:.1f} s |"
        )
    print()
    print(
        f"plot: {args.plot}; false trips counted over {args.healthy_calls:,} simulated healthy "
        "calls per breaker (bootstrap of the recorded healthy scores)"
    )


if __name__ == "__main__":
    main()
