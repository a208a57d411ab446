"""Every example of the seed's quick reference (llm-service-circuit-breaker-notes.md) runs as
documented, with ``src.`` imports changed to ``tripwise.compat.`` and localhost:11434 pointed
at a fake Ollama-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tripwise import FakeClock, State
from tripwise.compat import llm_health_check
from tripwise.compat.llm_health_check import LLMHealthChecker
from tripwise.compat.llm_service import CircuitBreakerError, LLMService
from tripwise.llm import AllAttemptsFailed

pytestmark = pytest.mark.integration

QUICK_START = """
from src.llm_service import LLMService, CircuitBreakerError
from src.llm_health_check import get_health_checker

# Local service automatically uses circuit breaker
service = LLMService(
    base_url="http://localhost:11434/v1",
    model="llama3.2"
)

# Make requests - they'll be gated by circuit breaker
try:
    result = service.complete("What is 2+2?")
except CircuitBreakerError:
    print("Service is temporarily unavailable")
"""

HEALTH_STATUS = """
from src.llm_health_check import get_health_checker

checker = get_health_checker()
endpoint = "http://localhost:11434/v1"

# Current metrics
metrics = checker.get_health_status(endpoint)
print(f"State: {metrics.state}")  # CLOSED, OPEN, HALF_OPEN
print(f"Consecutive failures: {metrics.consecutive_failures}")

# Summary with stats
summary = checker.get_metrics_summary(endpoint)
print(f"Failure rate: {summary['failure_rate']:.2%}")
print(f"Avg response time: {summary['avg_response_time_ms']:.1f}ms")

# Perform health check
import asyncio
is_healthy = await checker.health_check(endpoint)
print(f"Healthy: {is_healthy}")
"""

DISABLE = """
service = LLMService(
    base_url="http://localhost:11434/v1",
    enable_circuit_breaker=False  # Disable (not recommended)
)
"""

THRESHOLDS = """
from src.llm_health_check import get_health_checker

checker = get_health_checker()
metrics = checker.register_endpoint(
    endpoint="http://localhost:11434/v1",
    failure_threshold=5,              # Open after 5 failures (default: 3)
    recovery_timeout_seconds=120      # Try recovery after 2 min (default: 60s)
)
"""

ERROR_HANDLING = """
from src.llm_service import LLMService
from src.llm_health_check import CircuitBreakerError

service = LLMService.with_local()

try:
    result = service.complete("prompt")
except CircuitBreakerError as e:
    # Circuit is OPEN - service unavailable
    print(f"Circuit breaker opened: {e}")
    # Fast-fail, don't retry
except Exception as e:
    # Other errors (network, timeout, etc.)
    print(f"Request failed: {e}")
    # Could retry with fallback
"""


@pytest.fixture
def seed(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs a seed example; a fresh process-wide checker for each test."""
    monkeypatch.setattr(llm_health_check, "_checker", LLMHealthChecker(registry=None))

    def run(example: str, **env: Any) -> dict[str, Any]:
        code = (
            textwrap.dedent(example)
            .replace("from src.", "from tripwise.compat.")
            .replace("http://localhost:11434", server.url)
        )
        namespace: dict[str, Any] = dict(env)
        if "await " in code:
            body = textwrap.indent(code, "    ")
            exec(f"async def __example():\n{body}\n    return locals()", namespace)
            namespace.update(asyncio.run(namespace["__example"]()))
        else:
            exec(code, namespace)
        return namespace

    return run


def test_quick_start(seed: Any, server: FakeLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    ns = seed(QUICK_START)
    result = ns["result"]
    assert result["content"] == "The answer is 4"
    assert server.requests[-1][0] == "/v1/chat/completions"
    assert capsys.readouterr().out == ""


def test_response_metadata(seed: Any) -> None:
    result = seed(QUICK_START)["result"]
    assert set(result) >= {
        "content",
        "model",
        "usage",
        "response_time_ms",
        "fallback_used",
        "attempt",
    }
    assert result["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    assert result["fallback_used"] is False and result["attempt"] == 0
    assert isinstance(result["response_time_ms"], float)


def test_check_health_status(
    seed: Any, server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(QUICK_START)
    ns = seed(HEALTH_STATUS)
    out = capsys.readouterr().out
    assert "State: " in out and "Consecutive failures: 0" in out
    assert "Failure rate: 0.00%" in out and "Avg response time: " in out
    assert "Healthy: True" in out and ns["is_healthy"] is True
    assert "/api/health" in [p for p, _ in server.requests]
    status = ns["metrics"]
    assert status.state is State.CLOSED and status.total_requests == 1
    for field in (
        "total_failures",
        "failure_rate",
        "avg_response_time_ms",
        "last_health_check",
        "last_healthy_at",
    ):
        assert hasattr(status, field)


def test_health_check_falls_back_to_api_tags_on_a_real_ollama(
    seed: Any, server: FakeLLMServer
) -> None:
    seed(THRESHOLDS)
    checker = llm_health_check.get_health_checker()
    server.healthy = False
    assert asyncio.run(checker.health_check(f"{server.url}/v1")) is False
    server.healthy = True
    assert asyncio.run(checker.health_check(f"{server.url}/v1")) is True


def test_disable_circuit_breaker(seed: Any, server: FakeLLMServer) -> None:
    service = seed(DISABLE, LLMService=LLMService)["service"]  # continues the quick start
    server.default = Fault("status", status=500)
    waits: list[float] = []
    service._sleep = waits.append
    for _ in range(5):  # never opens: every call reaches the server
        with pytest.raises(AllAttemptsFailed):
            service.complete("x")
    assert len(server.requests) == 10 and waits == [2.0] * 5


def test_configure_thresholds(seed: Any, server: FakeLLMServer) -> None:
    seed(QUICK_START)
    ns = seed(THRESHOLDS)
    assert ns["metrics"].state is State.CLOSED
    checker = llm_health_check.get_health_checker()
    breaker = checker.breaker(f"{server.url}/v1")
    assert breaker.half_open_after == 120.0
    service = seed(QUICK_START)["service"]
    service._sleep = lambda s: None
    server.default = Fault("status", status=500)
    for _ in range(2):
        with pytest.raises(AllAttemptsFailed):
            service.complete("x")  # 4 failures: still closed with a threshold of 5
    assert breaker.state is State.CLOSED
    with pytest.raises(AllAttemptsFailed):
        service.complete("x")
    assert breaker.state is State.OPEN  # the re-registered breaker guards the service


def test_error_handling(
    seed: Any, server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = Fault("status", status=500)
    for _ in range(2):
        seed(ERROR_HANDLING)
    out = capsys.readouterr().out
    assert out.count("Request failed: every attempt failed") == 2
    seed(ERROR_HANDLING)
    assert "Circuit breaker opened: circuit breaker open" in capsys.readouterr().out


def test_state_transitions_example_sequence(server: FakeLLMServer) -> None:
    """Steps 1-10 of the seed's example sequence, on a fake clock."""
    clock = FakeClock()
    checker = LLMHealthChecker(registry=None, clock=clock)
    endpoint = server.base_url
    service = LLMService(
        base_url=endpoint, model="llama3.2", health_checker=checker, sleep=clock.advance
    )
    assert checker.get_health_status(endpoint).state is State.CLOSED  # 1
    server.default = Fault("status", status=500)
    with pytest.raises(AllAttemptsFailed):
        service.complete("x")  # requests 1 and 2 fail (first try and its retry)
    assert checker.get_health_status(endpoint).consecutive_failures == 2
    assert checker.get_health_status(endpoint).state is State.CLOSED  # 2, 3
    with pytest.raises(AllAttemptsFailed):
        service.complete("x")  # request 3 fails: OPEN; its retry is skipped
    assert checker.get_health_status(endpoint).state is State.OPEN  # 4
    sent = len(server.requests)
    with pytest.raises(CircuitBreakerError):
        service.complete("x")  # 5: blocked without a request (its speed: bench/llm_service.py)
    assert len(server.requests) == sent
    clock.advance(60.0)  # 6, 7
    assert checker.breaker(endpoint).retry_after() == 0.0  # the next request is the probe
    server.default = Fault("ok")
    assert service.complete("x")["content"] == "The answer is 4"  # 8, 9
    status = checker.get_health_status(endpoint)
    assert status.state is State.CLOSED and status.consecutive_failures == 0  # 10


def test_background_health_checks_every_30_seconds(server: FakeLLMServer) -> None:
    sleeps: list[float] = []

    async def main() -> None:
        probed = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)
            probed.set()
            await asyncio.sleep(3600)

        checker = LLMHealthChecker(registry=None, async_sleep=fake_sleep, jitter=0.0)
        checker.register_endpoint(server.base_url)
        async with checker:
            await asyncio.wait_for(probed.wait(), 10)
        assert checker.get_health_status(server.base_url).last_health_check is not None

    asyncio.run(main())
    assert sleeps == [30.0]
    assert ("/api/health", None) in server.requests
