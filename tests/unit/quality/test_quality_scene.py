"""The quality demo scene: degrade -> trip -> fallback -> recover -> close."""

from __future__ import annotations

import io

import pytest

from tripwise.demo import quality_scene


def check_timeline(text: str) -> None:
    lines = text.splitlines()
    degrade = next(i for i, line in enumerate(lines) if "soft failure begins" in line)
    fixed = next(i for i, line in enumerate(lines) if "model fixed" in line)
    trip = next(i for i, line in enumerate(lines) if "closed -> open" in line)
    assert degrade < trip < fixed  # trips during the soft failure, not before
    assert any("by the fallback" in line and " 0 by the fallback" not in line for line in lines)
    assert any("half_open -> closed" in line for line in lines[fixed:])
    assert lines[-1].endswith("breaker closed")


def test_scene_with_built_in_model() -> None:
    out = io.StringIO()
    quality_scene.run(out, model=quality_scene._TinyModel(seed=3))
    assert "built-in 3-class Gaussian classifier" in out.getvalue()
    check_timeline(out.getvalue())


def test_scene_with_scikit_learn_model() -> None:
    pytest.importorskip("sklearn")
    out = io.StringIO()
    quality_scene.run(out)
    assert "scikit-learn LogisticRegression" in out.getvalue()
    check_timeline(out.getvalue())
