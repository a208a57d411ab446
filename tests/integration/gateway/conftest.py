"""Fixtures: fake LLM backends (the LLM issue's server) and a real ``tripwise gateway``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.gateway_process import GatewayProcess
from tests.support.fake_llm import FakeLLMServer

pytestmark = pytest.mark.integration


@pytest.fixture
def primary() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(model="primary-model") as server:
        yield server


@pytest.fixture
def secondary() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(model="secondary-model") as server:
        yield server


def chain_config(
    primary: FakeLLMServer,
    secondary: FakeLLMServer,
    *,
    route: str = "",
    extra_routes: str = "",
    primary_type: str = "openai",
    secondary_type: str = "ollama",
    shutdown: str = "{pre_stop_delay: 0.2, drain_timeout: 2}",
    breaker: str = "{failure_threshold: 3, recovery_timeout: 30}",
) -> str:
    """The seed's chain (MAX GPU -> Ollama CPU -> cache -> degraded) on the fake servers."""
    p_url = primary.base_url if primary_type == "openai" else primary.url
    s_url = secondary.base_url if secondary_type == "openai" else secondary.url
    return f"""
admin_key: test-admin-key
shutdown: {shutdown}
backends:
  max_gpu:
    type: {primary_type}
    url: "{p_url}"
    timeout: 3
    stall_timeout: 1.0
    first_byte_timeout: 1.5
    breaker: {breaker}
  ollama_cpu:
    type: {secondary_type}
    url: "{s_url}"
    timeout: 3
    stall_timeout: 1.0
    first_byte_timeout: 1.5
    breaker: {breaker}
  cache: {{type: cache, ttl: 300}}
  degraded: {{type: degraded, message: "Service temporarily unavailable"}}
routes:
  "*":
    chain: [max_gpu, ollama_cpu, cache, degraded]
    {route}
{extra_routes}
"""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[[str], GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(config_text: str) -> GatewayProcess:
        g = GatewayProcess(tmp_path, config_text).start()
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()
