"""The fallback-chain demo scene runs without services and shows every tier at work."""

from __future__ import annotations

import io

from tripwise.demo import chain_scene


def test_chain_scene_walks_all_tiers_and_prints_usage() -> None:
    out = io.StringIO()
    chain_scene.run(out, fast=True)
    text = out.getvalue()
    for tier in ("primary", "secondary", "cache", "degraded"):
        assert f"-> {tier}" in text
    assert "low confidence" in text and "cached" in text
    assert "breaker primary: open -> half_open" in text
    usage = text.split("per-tier usage:")[1]
    assert [line.split()[0] for line in usage.strip().splitlines()] == [
        "primary",
        "secondary",
        "cache",
        "degraded",
    ]
