"""Health checker bookkeeping and how probes feed the breaker (fake clock, fake probes)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading

import pytest

from tripwise import CircuitBreakerOpen, FakeClock, Registry, State
from tripwise.policies import HealthChecker, get_health_checker
from tripwise.policies.health import server_error


class FakeProbe:
    def __init__(self) -> None:
        self.ok: bool | Exception = True
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        if isinstance(self.ok, Exception):
            raise self.ok
        return self.ok


def make(clock: FakeClock) -> tuple[HealthChecker, FakeProbe]:
    checker = HealthChecker(registry=Registry(), clock=clock, interval=5.0)
    probe = FakeProbe()
    checker.register_endpoint("http://ollama:11434/v1", probe=probe)
    return checker, probe


EP = "http://ollama:11434/v1"


def test_request_counters_follow_the_seed_state_sequence() -> None:
    clock = FakeClock()
    checker, _ = make(clock)
    status = checker.get_health_status(EP)
    assert (status.state, status.total_requests, status.avg_response_time_ms) == (
        State.CLOSED,
        0,
        None,
    )

    def ok() -> str:
        clock.advance(0.1)
        return "4"

    def down() -> None:
        clock.advance(0.3)
        raise ConnectionError("refused")

    assert checker.call(EP, ok) == "4"
    for expected in (1, 2):
        with pytest.raises(ConnectionError):
            checker.call(EP, down)
        assert checker.get_health_status(EP).consecutive_failures == expected
        assert checker.get_health_status(EP).state is State.CLOSED
    with pytest.raises(CircuitBreakerOpen):  # the third failure opens it
        checker.call(EP, down)
    with pytest.raises(CircuitBreakerOpen):  # blocked, not attempted
        checker.call(EP, ok)
    status = checker.get_health_status(EP)
    assert status.state is State.OPEN
    assert (status.total_requests, status.total_failures) == (4, 3)
    assert status.failure_rate == pytest.approx(0.75)
    assert status.avg_response_time_ms == pytest.approx((100 + 3 * 300) / 4)
    assert status.last_healthy_at is not None
    clock.advance(60.0)  # recovery_timeout_seconds
    assert checker.call(EP, ok) == "4"
    status = checker.get_health_status(EP)
    assert status.state is State.CLOSED and status.consecutive_failures == 0
    summary = checker.get_metrics_summary(EP)
    assert summary["trip_count"] == 1 and summary["total_rejected"] == 1
    assert summary["state"] == "closed" and summary["health_url"] == EP + "/health"


async def test_failing_probes_open_the_breaker_and_a_passing_probe_half_opens_it_early() -> None:
    clock = FakeClock()
    checker, probe = make(clock)
    probe.ok = False
    assert await checker.health_check(EP) is False
    probe.ok = ConnectionError("refused")
    assert await checker.health_check(EP) is False
    assert checker.breaker(EP).state is State.CLOSED
    assert await checker.health_check(EP) is False  # third failing probe in a row
    assert checker.breaker(EP).state is State.OPEN
    status = checker.get_health_status(EP)
    assert (status.total_probes, status.probe_failures, status.last_probe_ok) == (3, 3, False)
    assert status.total_requests == 0  # probes are not requests
    assert status.last_health_check is not None

    probe.ok = True
    assert await checker.health_check(EP) is True  # long before the 60 s cool-down
    assert checker.breaker(EP).state is State.HALF_OPEN
    assert checker.call(EP, lambda: "back") == "back"
    assert checker.breaker(EP).state is State.CLOSED


def test_jittered_interval_stays_in_range() -> None:
    checker = HealthChecker(registry=None, interval=10.0, jitter=0.2, rng=random.Random(5))
    delays = [checker._next_delay(10.0) for _ in range(200)]
    assert min(delays) >= 8.0 and max(delays) <= 12.0
    assert max(delays) - min(delays) > 1.0  # actually spread


async def test_background_probing_starts_and_stops_cleanly() -> None:
    sleeps: list[float] = []
    enough = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) >= 6:
            enough.set()
        await asyncio.sleep(0)

    checker = HealthChecker(registry=None, interval=1.0, async_sleep=fake_sleep)
    probes = [FakeProbe(), FakeProbe()]
    checker.register_endpoint("a", probe=probes[0])
    async with checker:
        checker.register_endpoint("b", probe=probes[1])  # added while running
        await asyncio.wait_for(enough.wait(), 5)
    assert probes[0].calls >= 1 and probes[1].calls >= 1
    assert all(0.9 <= s <= 1.1 for s in sleeps)
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("tripwise-health")]
    assert leftover == []
    assert not checker.running


def test_thread_mode_leaves_no_thread_behind() -> None:
    checker = HealthChecker(registry=None, interval=0.01)
    probe = FakeProbe()
    checker.register_endpoint("svc", probe=probe)
    before = {t.ident for t in threading.enumerate()}
    checker.start_in_thread()
    with pytest.raises(RuntimeError, match="already running"):
        checker.start_in_thread()
    checker.stop_thread()
    assert {t.ident for t in threading.enumerate()} <= before  # nothing new left running
    assert not [t for t in threading.enumerate() if t.name == "tripwise-health"]
    assert probe.calls >= 1


def test_registration_errors_and_the_process_wide_checker() -> None:
    checker = HealthChecker(registry=None)
    with pytest.raises(ValueError, match="failure_threshold must be an integer >= 1"):
        checker.register_endpoint("x", failure_threshold=0)
    with pytest.raises(ValueError, match="recovery_timeout_seconds must be a finite number > 0"):
        checker.register_endpoint("x", recovery_timeout_seconds=0)
    with pytest.raises(KeyError, match="not registered"):
        checker.get_health_status("nope")
    with pytest.raises(ValueError, match="jitter"):
        HealthChecker(jitter=1.5)
    assert get_health_checker() is get_health_checker()


def test_re_registering_replaces_the_endpoint_breaker() -> None:
    registry = Registry()
    checker = HealthChecker(registry=registry)
    checker.register_endpoint("svc", failure_threshold=1)
    first = checker.breaker("svc")
    checker.register_endpoint("svc", failure_threshold=5, recovery_timeout_seconds=120)
    assert checker.breaker("svc") is not first
    assert registry.get("svc") is checker.breaker("svc")
    assert checker.breaker("svc").half_open_after == 120.0


class Response:
    """What ``requests.post`` / ``httpx.post`` give back: an object with a ``status_code``."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def test_http_5xx_answers_count_as_failed_requests_and_open_the_breaker() -> None:
    clock = FakeClock()
    checker = HealthChecker(registry=None, clock=clock)
    checker.register_endpoint("api", probe=FakeProbe(), failure_threshold=3)

    def post(status: int) -> Response:
        return Response(status)

    assert checker.call("api", post, 404).status_code == 404  # a client error: the service works
    assert checker.get_health_status("api").total_failures == 0
    for _ in range(3):
        try:  # the caller still gets the answer, unless it is the one that trips the breaker
            answer = checker.call("api", post, 503)
        except CircuitBreakerOpen:
            break
        assert answer.status_code == 503
    status = checker.get_health_status("api")
    assert (status.total_failures, status.state) == (3, State.OPEN)
    with pytest.raises(CircuitBreakerOpen):
        checker.call("api", post, 200)


def test_the_result_check_can_be_replaced_or_turned_off() -> None:
    def empty(result: object) -> bool:
        return result == ""

    checker = HealthChecker(registry=None, is_failure=empty)
    checker.register_endpoint("llm", probe=FakeProbe())
    checker.register_endpoint("raw", probe=FakeProbe(), is_failure=None)
    checker.call("llm", lambda: "")
    checker.call("llm", lambda: Response(500))  # not what this check looks at
    checker.call("raw", lambda: Response(500))
    assert checker.get_health_status("llm").total_failures == 1
    assert checker.get_health_status("raw").total_failures == 0
    with pytest.raises(TypeError, match="is_failure must be a callable"):
        HealthChecker(registry=None, is_failure=500)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is_failure must be a callable"):
        checker.register_endpoint("x", is_failure="5xx")  # type: ignore[arg-type]


def test_server_error_recognises_responses_only() -> None:
    assert server_error(Response(500)) and server_error(Response(599))
    assert not server_error(Response(499)) and not server_error("500")
    assert not server_error(Response(True))  # type: ignore[arg-type]


# A core install, simulated: httpx cannot be imported in the child interpreter.
_NO_HTTPX = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "httpx" or name.startswith("httpx."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
from tripwise.policies import HealthChecker
try:
    HealthChecker(registry=None)
except ImportError as exc:
    print("refused:", exc)
import asyncio
async def probe():
    return True
checker = HealthChecker(registry=None, http=False)
checker.register_endpoint("svc", probe=probe)
print("probe ok:", asyncio.run(checker.health_check("svc")))
try:
    checker.register_endpoint("http://svc:8080")
except ValueError as exc:
    print("needs probe:", exc)
"""


def test_without_httpx_the_checker_refuses_http_probes_at_construction() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _NO_HTTPX], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0].startswith("refused: HealthChecker probes endpoints over HTTP with httpx")
    assert "pip install 'tripwise[client]'" in out[0] and "pip install '.[client]'" in out[0]
    assert out[1] == "probe ok: True"
    assert out[2].startswith("needs probe: endpoint 'http://svc:8080' needs probe=")


def test_a_thread_whose_start_fails_reports_it_and_leaves_nothing_running() -> None:
    checker = HealthChecker(registry=None)

    async def broken_start() -> None:
        raise OSError("no sockets")

    checker.start = broken_start  # type: ignore[method-assign]
    with pytest.raises(OSError, match="no sockets"):
        checker.start_in_thread()
    assert not [t for t in threading.enumerate() if t.name == "tripwise-health"]
    checker.stop_thread()  # nothing to stop: returns at once
