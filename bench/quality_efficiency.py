"""Where the default lane's delay goes, on the continuous scenarios of quality_scenarios.py.

Two measurements behind docs/benchmarks.md, "Fifth pass":

- **Transform efficiency** (no warmup, no budget split, the healthy distribution known): for
  each score transform a single CUSUM can read (raw score, rank among the known-good scores,
  ``-log(rank)``, "at or below the known-good q-quantile"), the smallest Wald delay
  ``ln(1e6) / (theta(k) * (mean_degraded - k))`` over its slack ``k`` (``theta`` the
  adjustment coefficient on the healthy pool), beside the oracle's ``ln(1e6) / KL`` on its 40
  bins. A ratio here is lost by the transform itself, whatever the thresholds.
- **The flaky join's p95** (``--burst``): the share of fresh deployments (real warmups) that
  trip within the first 30-call burst, with every trip line scaled by 1.0, 0.95, 0.9: the
  p95 is a cliff at 95%.

Run:  python bench/quality_efficiency.py            (transforms, about 1 minute)
      python bench/quality_efficiency.py --burst    (adds the burst cliff, about 4 minutes)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
import _detection as det
import quality_scenarios as qs
from _common import positive_int
from tripwise.quality import QualityDrift

NATS = math.log(1e6)  # one false trip per million calls, a single CUSUM


def _theta(healthy_steps: np.ndarray) -> float:
    """Largest theta with mean(exp(theta * step)) <= 1 (0 if the steps do not drift down)."""
    if healthy_steps.mean() >= 0.0:
        return 0.0
    lo, hi = 0.0, 1.0
    while np.mean(np.exp(hi * healthy_steps)) <= 1.0 and hi < 1e4:
        lo, hi = hi, hi * 2.0
    for _ in range(50):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if np.mean(np.exp(mid * healthy_steps)) <= 1.0 else (lo, mid)
    return lo


def best_delay(g0: np.ndarray, g1: np.ndarray) -> float:
    """A CUSUM on ``g`` (rising when degraded) at its best slack: the smallest Wald delay."""
    best = math.inf
    for k in np.linspace(g0.mean(), g1.mean(), 60)[1:-1]:
        theta = _theta(g0 - k)
        if theta > 0.0:
            best = min(best, NATS / theta / (g1.mean() - k))
    return best


def oracle_delay(healthy: np.ndarray, degraded: np.ndarray) -> float:
    edges = np.concatenate([np.linspace(0.0, 1.0, 41)[:-1], [np.inf]])

    def hist(x: np.ndarray) -> np.ndarray:
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, None)
        return (np.bincount(idx, minlength=40) + 0.5) / (len(x) + 20.0)

    f0, f1 = hist(healthy), hist(degraded)
    return NATS / float((f1 * np.log(f1 / f0)).sum())


def transforms(sc: qs.Scenario) -> dict[str, float]:
    ref = np.sort(sc.healthy)
    n = len(ref)

    def rank(x: np.ndarray) -> np.ndarray:  # kept off 0 for the log
        left, right = np.searchsorted(ref, x, "left"), np.searchsorted(ref, x, "right")
        return (left + right + 1) / (2 * n + 2)

    u0, u1 = rank(sc.healthy), rank(sc.degraded)
    out = {
        "oracle": oracle_delay(sc.healthy, sc.degraded),
        "rank": best_delay(-u0, -u1),
        "-log rank": best_delay(-np.log(u0), -np.log(u1)),
        "raw": best_delay(-sc.healthy, -sc.degraded),
    }
    for q in (0.01, 0.05, 0.1, 0.2, 0.3):
        line = np.quantile(sc.healthy, q)
        low0, low1 = (sc.healthy <= line).astype(float), (sc.degraded <= line).astype(float)
        out[f"<= q{q:g}"] = best_delay(low0, low1)
    return out


def burst_cliff(sc: qs.Scenario, scales: tuple[float, ...], rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bank = det.learn_many(QualityDrift, sc.healthy, rng, rows)
    lead = rng.choice(sc.healthy, size=(rows, qs.LEAD))
    deg = sc.degrade(rng, rows, 400)
    hs = bank.hs.copy()
    for scale in scales:
        bank.hs = hs * scale
        start, _ = det.bank_state_after(bank, lead)
        first = det.bank_first_trip(bank, deg, start)
        first = np.where(first == 0, 10**9, first)
        print(
            f"| {scale:.2f} | {np.mean(first <= qs.BURST[0]):.1%} | "
            f"{qs.pct(first, 50):.0f} / {qs.pct(first, 95):.0f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--burst", action="store_true", help="also the flaky join's cliff")
    parser.add_argument("--rows", type=positive_int, default=400, help="deployments for --burst")
    args = parser.parse_args()
    threadpool_limits(1)
    rng = np.random.default_rng(args.seed)  # the same pools as quality_scenarios.py
    scenarios = qs.tabular_scenarios(rng) + qs.embedding_scenarios(rng)
    header = None
    for sc in scenarios:
        row = transforms(sc)
        if header is None:
            header = list(row)
            print("| scenario | " + " | ".join(header) + " | rank / oracle |")
            print("|---" * (len(header) + 2) + "|")
        cells = " | ".join(f"{row[k]:.1f}" for k in header)
        print(f"| {sc.name} | {cells} | {row['rank'] / row['oracle']:.2f}x |", flush=True)
    if args.burst:
        flaky = next(sc for sc in scenarios if "flaky join" in sc.name)
        print()
        print("| trip lines x | tripped within the first burst | median / p95 |")
        print("|---|---|---|")
        burst_cliff(flaky, (1.0, 0.95, 0.9), args.rows, args.seed + 11)


if __name__ == "__main__":
    main()
