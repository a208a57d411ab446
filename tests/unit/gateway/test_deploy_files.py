"""The compose file and the image's config: valid, and wired as documented (no docker here, so
the files are checked, not run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tripwise.gateway.config import parse_config

ROOT = Path(__file__).resolve().parents[3]


def test_the_image_config_is_valid_and_shares_state_through_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TRIPWISE_REDIS_URL", "TRIPWISE_ADMIN_KEY", "MAX_GPU_URL", "OLLAMA_URL"):
        monkeypatch.delenv(name, raising=False)
    cfg = parse_config((ROOT / "deploy" / "compose" / "gateway.yaml").read_text(), "gateway.yaml")
    assert cfg.redis_url == "redis://redis:6379/0"
    assert cfg.backends["cache"].store == "redis"
    assert list(cfg.routes["*"].chain) == ["max_gpu", "ollama_cpu", "cache", "degraded"]
    assert cfg.backends["max_gpu"].breaker.trip_on == {"consecutive_failures": 3}


def test_compose_wires_gateway_redis_and_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIPWISE_REDIS_URL", raising=False)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"gateway", "redis", "ollama", "max-serve-llama"} <= set(services)
    gateway = services["gateway"]
    assert gateway["environment"]["TRIPWISE_REDIS_URL"] == "redis://redis:6379/0"
    cfg = parse_config((ROOT / "deploy" / "compose" / "gateway.yaml").read_text())
    grace = int(re.fullmatch(r"(\d+)s", gateway["stop_grace_period"]).group(1))
    assert grace >= cfg.shutdown.pre_stop_delay + cfg.shutdown.drain_timeout
    assert "/health/ready" in " ".join(gateway["healthcheck"]["test"])


def test_dockerfile_runs_the_gateway_in_exec_form() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tripwise", "gateway"]' in text  # exec form: SIGTERM reaches it
    assert "'.[gateway,redis]'" in text
    assert re.search(r"^USER \d+", text, re.M)
