"""The Helm chart: lint and render in the suite. No helm binary is installable here (none in
the machine's apt sources, none on PyPI), so the templates are rendered by a small Go-template
evaluator (helm_render.py) and the manifests validated against the Kubernetes JSON schemas
(kubernetes-validate, strict). Where PyPI's helm-python-sdk (Helm's own Go SDK as a library) is
installed, test_helm_sdk.py also runs Helm's lint and template engine on the chart."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.gateway.helm_render import render_chart
from tripwise.gateway.config import parse_config

CHART = Path(__file__).resolve().parents[3] / "deploy" / "helm" / "tripwise-gateway"
K8S = "1.30.0"


def by_kind(rendered: dict[str, list[dict]]) -> dict[str, dict]:
    return {d["kind"]: d for docs in rendered.values() for d in docs}


def container(docs: dict[str, dict]) -> dict:
    return docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("files", [[], ["values-health-probes.yaml"]])
def test_manifests_validate_against_the_kubernetes_schemas(files: list[str]) -> None:
    rendered = render_chart(CHART, [CHART / f for f in files], adminKey={"value": "s3cret"})
    docs = by_kind(rendered)
    assert set(docs) == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceMonitor",
    }
    for kind, doc in docs.items():
        if kind == "ServiceMonitor":
            continue  # a CRD: checked below
        kubernetes_validate.validate(doc, K8S, strict=True)
    sm = docs["ServiceMonitor"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert sm["spec"]["selector"]["matchLabels"] == docs["Service"]["spec"]["selector"]


def test_probes_prestop_and_grace_period() -> None:
    docs = by_kind(render_chart(CHART))
    c = container(docs)
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["startupProbe"]["httpGet"]["path"] == "/health/startup"
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    cm = yaml.safe_load(docs["ConfigMap"]["data"]["gateway.yaml"])
    assert spec["terminationGracePeriodSeconds"] >= 5 + cm["shutdown"]["drain_timeout"]
    assert "replicas" not in docs["Deployment"]["spec"]  # the HPA owns the replica count
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_seed_probe_timings() -> None:
    docs = by_kind(render_chart(CHART, [CHART / "values-health-probes.yaml"]))
    c = container(docs)
    live, ready = c["livenessProbe"], c["readinessProbe"]
    assert live["httpGet"]["path"] == ready["httpGet"]["path"] == "/health"
    assert (live["initialDelaySeconds"], live["periodSeconds"]) == (30, 30)
    assert (live["timeoutSeconds"], live["failureThreshold"]) == (10, 3)
    assert (ready["initialDelaySeconds"], ready["periodSeconds"]) == (20, 10)
    assert (ready["timeoutSeconds"], ready["failureThreshold"]) == (5, 3)
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 30  # the seed's grace period


def test_the_rendered_gateway_config_is_valid_and_wires_redis() -> None:
    docs = by_kind(
        render_chart(CHART, redis={"url": "redis://redis:6379/0"}, autoscaling={"enabled": False})
    )
    text = docs["ConfigMap"]["data"]["gateway.yaml"]
    cfg = parse_config(text.replace("${TRIPWISE_ADMIN_KEY:-}", "k"), "configmap")
    assert cfg.redis_url == "redis://redis:6379/0"
    assert cfg.port == 8000 and cfg.shutdown.pre_stop_delay == 0
    assert list(cfg.routes["*"].chain) == ["max_gpu", "ollama_cpu", "cache", "degraded"]
    assert docs["Deployment"]["spec"]["replicas"] == 2
    assert "HorizontalPodAutoscaler" not in docs


def test_chart_lint() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["name"] == CHART.name
    # every value outside the gateway config block is documented by a comment above it
    lines = (CHART / "values.yaml").read_text().splitlines()
    in_config = False
    for i, line in enumerate(lines):
        if re.match(r"^\w", line):
            in_config = line.startswith("config:")
        m = re.match(r"^(\s*)(\w+):\s*(\S.*)?$", line)
        if not m or in_config or line.strip().startswith("#"):
            continue
        is_leaf = m.group(3) is not None
        if is_leaf:
            above = lines[i - 1].strip()
            assert above.startswith("#"), f"values.yaml:{i + 1}: {m.group(2)} is undocumented"
