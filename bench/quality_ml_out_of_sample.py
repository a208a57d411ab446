"""Out-of-sample false trips of the ml-breaker thresholds chosen by quality_scenarios.py.

quality_scenarios.py searches each ml-breaker ``quality_below`` threshold on the same healthy
calls it then reports ("<= 1 per million" by construction). This script rebuilds the
scenarios' healthy score pools (same seed) and counts the trip episodes of each scenario's
best window, at the threshold as printed (3 decimals), on 20,000,000 fresh healthy calls.

Run:  python bench/quality_scenarios.py --json /tmp/scenarios.json
      python bench/quality_ml_out_of_sample.py /tmp/scenarios.json     (about 2 minutes)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
import _detection as det
import quality_scenarios as qs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="the --json output of quality_scenarios.py")
    parser.add_argument("--seed", type=int, default=0, help="the seed of that run")
    parser.add_argument("--blocks", type=int, default=4, help="blocks of 5,000,000 calls")
    args = parser.parse_args(argv)
    threadpool_limits(1)
    rows = {r["scenario"]: r for r in json.loads(args.json.read_text())}
    rng = np.random.default_rng(args.seed)
    scenarios = (
        qs.tabular_scenarios(rng)
        + qs.embedding_scenarios(rng)
        + qs.text_scenarios(rng)
        + [qs.concept_scenario()]
    )
    fresh = np.random.default_rng([args.seed, 12345])
    print("| scenario | best ml-breaker lane | trips / fresh healthy calls | per million |")
    print("|---|---|---|---|")
    for sc in scenarios:
        if sc.name not in rows:
            continue
        lanes = [
            lane
            for lane in rows[sc.name]["lanes"]
            if lane["name"].startswith("ml-breaker quality_below")
        ]
        best = min(lanes, key=lambda lane: (lane["median"], lane["p95"]))
        match = re.search(r"quality_below\(([0-9.]+)", best["name"])
        assert match is not None
        threshold, window = float(match.group(1)), best["extra"]["window"]
        episodes = calls = 0
        for _ in range(args.blocks):
            below = det.rolling_means(fresh.choice(sc.healthy, size=(100, 50_000)), window)
            below = below < threshold
            episodes += int((below[:, 1:] & ~below[:, :-1]).sum() + below[:, 0].sum())
            calls += 100 * 50_000
        print(
            f"| {sc.name} | {best['name']} | {episodes} / {calls:,} | "
            f"{episodes / calls * 1e6:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
