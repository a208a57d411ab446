"""The chart through Helm itself: ``helm lint --strict`` and ``helm template``.

No ``helm`` binary can be installed here (Debian's ``helm`` packages are the Emacs framework,
PyPI and npm ship none), but PyPI's ``helm-python-sdk`` bundles Helm's official Go SDK (v4) as
a C library (``libhelm_c``): the same lint rules and template engine as the binary. When it is
installed these tests lint the chart with it, render it with Helm's engine, check the output
against the Kubernetes schemas and compare it with helm_render.py's rendering (the small
evaluator the other chart tests use), so a template construct that evaluator gets wrong shows
here. The dev extra installs it on x86_64 Linux (its only wheels); under CI=true a missing
package there is an error, elsewhere the tests are skipped, saying why.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.gateway.helm_render import render_chart

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - the dev extra installs it where wheels exist
    supported = sys.platform == "linux" and platform.machine() == "x86_64"
    if os.environ.get("CI") == "true" and supported:
        raise RuntimeError(
            "helm-python-sdk is missing under CI=true: install the dev extra "
            "(pip install -e '.[dev]')"
        ) from None
    pytest.skip(
        "helm-python-sdk (Helm's Go SDK) is not installed"
        + ("" if supported else " (it has wheels for x86_64 Linux only)"),
        allow_module_level=True,
    )

CHART = Path(__file__).resolve().parents[3] / "deploy" / "helm" / "tripwise-gateway"
K8S = "1.30.0"
CASES = [
    ({}, []),
    ({}, ["values-health-probes.yaml"]),
    ({"redis": {"url": "redis://redis:6379/0"}, "autoscaling": {"enabled": False}}, []),
    ({"adminKey": {"value": "s3cret"}}, []),
]


def _values(files: list[str], overrides: dict[str, Any]) -> dict[str, Any]:
    """What ``helm template -f FILE --set ...`` merges over the chart's defaults."""
    merged: dict[str, Any] = {}
    for f in files:
        _merge(merged, yaml.safe_load((CHART / f).read_text()) or {})
    _merge(merged, overrides)
    return merged


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _helm_template(values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="tripwise", namespace="default", is_install=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for path, text in rendered.items():
        docs = [d for d in yaml.safe_load_all(text) if d]
        if docs:
            out[path.split("/")[-1]] = docs
    return out


def test_helm_lint_strict_finds_nothing() -> None:
    for overrides, files in CASES:
        report = helm.lint(str(CHART), _values(files, overrides), strict=True)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert report["total_charts_linted"] == 1
        assert problems == [], (files, overrides, problems)


@pytest.mark.parametrize(("overrides", "files"), CASES)
def test_helm_template_is_valid_and_matches_helm_render(
    overrides: dict[str, Any], files: list[str]
) -> None:
    by_helm = _helm_template(_values(files, overrides))
    for docs in by_helm.values():
        for doc in docs:
            if doc["kind"] != "ServiceMonitor":  # a CRD: no schema in kubernetes-validate
                kubernetes_validate.validate(doc, K8S, strict=True)
    ours = render_chart(CHART, [CHART / f for f in files], release="tripwise", **overrides)
    ours = {path.split("/")[-1]: docs for path, docs in ours.items() if docs}
    assert sorted(by_helm) == sorted(ours)
    for name, docs in by_helm.items():
        assert docs == ours[name], name
