"""Every example of ml-breaker 0.1.1's README runs on tripwise with only the import changed
(``ml_breaker`` -> ``tripwise``: ``from tripwise import ...``, ``from tripwise._conditions
import ...``, ``from tripwise.metrics import PrometheusMetrics``). The README's ``...``
placeholders are filled in and the names its snippets use without importing are imported;
nothing else is added: the breakers are built exactly as written (default registry, default
clock). Time is faked by patching ``time.monotonic`` (what the default clock reads), so nothing
sleeps. The README blocks sit between ``# --- README`` rulers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tripwise import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Breakers built without ``clock=`` read this fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(time, "monotonic", fake)  # what the default clock reads at each call
    yield fake


@dataclass
class Ranking:
    items: list[str]
    confidence: float


class Models:
    """The README's ``reranker_model`` and ``lightweight_model``, with knobs."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.healthy = True
        self.confidence = 0.9
        self.seconds = 0.01
        self.calls = 0
        self.fallback_calls: list[tuple[str, list[str]]] = []

    def reranker_model(self, query: str, candidates: list[str]) -> Ranking:
        self.calls += 1
        self.clock.advance(self.seconds)
        if not self.healthy:
            raise ConnectionError("reranker unavailable")
        return Ranking(sorted(candidates), self.confidence)

    def lightweight_model(self, query: str, candidates: list[str]) -> Ranking:
        self.fallback_calls.append((query, candidates))
        return Ranking(list(candidates), 0.5)


@pytest.fixture
def models(clock: FakeClock) -> Models:
    return Models(clock)


def test_quick_start(models: Models, clock: FakeClock) -> None:
    reranker_model, lightweight_model = models.reranker_model, models.lightweight_model
    # --- README ---------------------------------------------------------------------------
    from tripwise import CircuitBreakerOpen, circuit_breaker
    from tripwise._conditions import consecutive_failures

    @circuit_breaker(
        trip_on=consecutive_failures(5),
        fallback=lightweight_model,
        half_open_after=30,
    )
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    # --------------------------------------------------------------------------------------
    assert call_reranker("q", ["b", "a"]).items == ["a", "b"]
    models.healthy = False
    for _ in range(4):
        with pytest.raises(ConnectionError):
            call_reranker("q", ["b", "a"])
    assert call_reranker("q", ["b", "a"]).items == ["b", "a"]  # 5th failure: fallback
    assert call_reranker.breaker.state == "open"
    calls = models.calls
    assert call_reranker("q2", ["d", "c"]).items == ["d", "c"]
    assert models.calls == calls  # no traffic reaches the model while open
    assert models.fallback_calls[-1] == ("q2", ["d", "c"])
    models.healthy = True
    clock.advance(30)
    call_reranker("q", ["b", "a"])
    call_reranker("q", ["b", "a"])
    assert call_reranker.breaker.state == "closed"
    assert issubclass(CircuitBreakerOpen, Exception)


def test_quality_signal_option_a_report_quality(models: Models) -> None:
    reranker_model = models.reranker_model
    # --- README ---------------------------------------------------------------------------
    from tripwise import circuit_breaker, quality_below, report_quality

    @circuit_breaker(trip_on=quality_below(threshold=0.7, window=20), fallback=None)
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        result = reranker_model(query, candidates)
        report_quality(result.confidence)  # emits to context side-channel
        return result  # return type unchanged

    # --------------------------------------------------------------------------------------
    models.confidence = 0.65  # soft failure: answers still come back
    for _ in range(19):
        assert isinstance(call_reranker("q", ["a"]), Ranking)
    assert call_reranker.breaker.state == "closed"
    call_reranker("q", ["a"])  # the 20th score fills the window: mean 0.65 < 0.7
    assert call_reranker.breaker.state == "open"


def test_quality_signal_option_b_score_fn(models: Models) -> None:
    reranker_model = models.reranker_model
    # --- README ---------------------------------------------------------------------------
    from tripwise import circuit_breaker, quality_below

    @circuit_breaker(
        trip_on=quality_below(threshold=0.7, window=20, score_fn=lambda r: r.confidence),
        fallback=[],
    )
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    # --------------------------------------------------------------------------------------
    models.confidence = 0.6
    results = [call_reranker("q", ["a"]) for _ in range(21)]
    assert all(isinstance(r, Ranking) for r in results[:19])
    assert results[19:] == [[], []]  # the 20th call trips on its own score: fallback, as ml-breaker
    assert call_reranker.breaker.state == "open"


def test_report_quality_wins_if_both_are_present(models: Models) -> None:
    reranker_model = models.reranker_model
    from tripwise import circuit_breaker, quality_below, report_quality

    @circuit_breaker(
        trip_on=quality_below(threshold=0.7, window=20, score_fn=lambda r: r.confidence)
    )
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        result = reranker_model(query, candidates)
        report_quality(0.95)  # validation says the answer is fine
        return result

    models.confidence = 0.1  # what score_fn would have said
    for _ in range(40):
        call_reranker("q", ["a"])
    assert call_reranker.breaker.state == "closed"


def test_require_quality_signal(models: Models) -> None:
    reranker_model = models.reranker_model
    from tripwise import circuit_breaker, quality_below

    @circuit_breaker(
        trip_on=quality_below(threshold=0.7, window=20),
        require_quality_signal=True,
        name="strict-reranker",
    )
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)  # forgot report_quality()

    with pytest.raises(Exception, match="strict-reranker"):
        call_reranker("q", ["a"])


def test_state_machine_recovery_threshold_defaults_to_two(models: Models, clock: FakeClock) -> None:
    reranker_model = models.reranker_model
    from tripwise import State, circuit_breaker, consecutive_failures

    @circuit_breaker(trip_on=consecutive_failures(1), fallback=None, half_open_after=30)
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    models.healthy = False
    with pytest.raises(Exception):  # noqa: B017 - the tripping call's error type is not the point
        call_reranker("q", [])
    assert call_reranker.breaker.state is State.OPEN
    models.healthy = True
    clock.advance(30)
    call_reranker("q", [])
    assert call_reranker.breaker.state is State.HALF_OPEN
    call_reranker("q", [])
    assert call_reranker.breaker.state is State.CLOSED


def test_composing_conditions_any_of(models: Models) -> None:
    reranker_model = models.reranker_model
    # --- README ---------------------------------------------------------------------------
    from tripwise import all_of, any_of, error_rate_above, latency_above, quality_below

    trip_on = any_of(quality_below(0.7, window=20), latency_above(2000, window=10))
    # --------------------------------------------------------------------------------------
    from tripwise import circuit_breaker

    @circuit_breaker(trip_on=trip_on, fallback=None)
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    models.seconds = 2.5  # every call now takes 2.5 s on the fake clock
    for _ in range(9):
        call_reranker("q", [])
    assert call_reranker.breaker.state == "closed"
    call_reranker("q", [])
    assert call_reranker.breaker.state == "open"
    assert all_of is not None and error_rate_above is not None


def test_composing_conditions_all_of(models: Models) -> None:
    reranker_model = models.reranker_model
    # --- README ---------------------------------------------------------------------------
    from tripwise import all_of, consecutive_failures, error_rate_above

    trip_on = all_of(error_rate_above(0.3, window=50), consecutive_failures(3))
    # --------------------------------------------------------------------------------------
    from tripwise import circuit_breaker

    @circuit_breaker(trip_on=trip_on, fallback="fallback")
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    for _ in range(35):
        call_reranker("q", [])
    models.healthy = False
    for _ in range(15):  # 15/50 = 0.3 does not exceed 0.3, although 15 failures in a row
        with pytest.raises(ConnectionError):
            call_reranker("q", [])
    assert call_reranker("q", []) == "fallback"  # 16/50 > 0.3 and a streak: trips
    assert call_reranker.breaker.state == "open"


def test_fallback_strategies(models: Models, capsys: pytest.CaptureFixture[str]) -> None:
    reranker_model, lightweight_model = models.reranker_model, models.lightweight_model
    models.healthy = False
    query, candidates = "q", ["x", "y"]
    # --- README (trip_on=... filled in) ---------------------------------------------------
    from tripwise import CircuitBreakerOpen, circuit_breaker, consecutive_failures

    # 1. Callable — called with the same args as the guarded function
    @circuit_breaker(trip_on=consecutive_failures(1), fallback=lightweight_model)
    def call_reranker_1(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    # 2. Static value — returned as-is when the breaker is open
    @circuit_breaker(trip_on=consecutive_failures(1), fallback=[])
    def call_reranker_2(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    # 3. No fallback — raises CircuitBreakerOpen
    @circuit_breaker(trip_on=consecutive_failures(1))
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    for _ in range(2):
        try:
            result = call_reranker(query, candidates)
        except CircuitBreakerOpen as e:
            print(e.name)  # breaker name
            print(e.state)  # State.OPEN
            print(e.trip_count)  # number of times this breaker has tripped
    # --------------------------------------------------------------------------------------
    assert call_reranker_1(query, candidates).items == candidates
    assert models.fallback_calls == [(query, candidates)]
    assert call_reranker_2(query, candidates) == []
    name = call_reranker.breaker.name
    assert capsys.readouterr().out.splitlines() == [name, "open", "1"] * 2
    assert "result" not in locals()


def test_registry_and_inspection(models: Models) -> None:
    reranker_model = models.reranker_model
    from tripwise import CircuitBreaker, State, circuit_breaker, consecutive_failures

    @circuit_breaker(trip_on=consecutive_failures(1), name="name")
    def my_fn() -> None:
        raise ConnectionError

    # --- README ---------------------------------------------------------------------------
    cb = my_fn.breaker  # attached to decorated function
    cb = CircuitBreaker.get("name")  # global registry lookup

    cb.state  # State.CLOSED | State.OPEN | State.HALF_OPEN  # noqa: B018
    cb.trip_count  # int  # noqa: B018
    cb.reset()  # force back to CLOSED — useful in tests
    CircuitBreaker.all()  # dict[str, CircuitBreaker]
    # --------------------------------------------------------------------------------------
    assert cb is my_fn.breaker
    with pytest.raises(Exception):  # noqa: B017
        my_fn()
    assert (cb.state, cb.trip_count) == (State.OPEN, 1)
    cb.reset()
    assert cb.state is State.CLOSED
    assert CircuitBreaker.all()["name"] is cb
    assert isinstance(CircuitBreaker.all(), dict)

    # --- README ---------------------------------------------------------------------------
    @circuit_breaker(name="reranker", trip_on=consecutive_failures(5))
    def call_reranker_v1(query, candidates): ...  # type: ignore[no-untyped-def]

    @circuit_breaker(name="reranker", trip_on=consecutive_failures(5))
    def call_reranker_v2(query, candidates): ...  # type: ignore[no-untyped-def]

    # Both functions reference the same CircuitBreaker instance
    assert call_reranker_v1.breaker is call_reranker_v2.breaker
    # --------------------------------------------------------------------------------------
    assert reranker_model is not None


def test_on_state_change_callback(models: Models, caplog: pytest.LogCaptureFixture) -> None:
    reranker_model = models.reranker_model
    logger = logging.getLogger("my_service")
    from tripwise import circuit_breaker, consecutive_failures

    # --- README (trip_on=... filled in) ---------------------------------------------------
    @circuit_breaker(
        trip_on=consecutive_failures(2),
        on_state_change=lambda breaker, old_state, new_state: logger.warning(
            "breaker %s: %s -> %s", breaker.name, old_state, new_state
        ),
    )
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return reranker_model(query, candidates)

    # --------------------------------------------------------------------------------------
    models.healthy = False
    with caplog.at_level(logging.WARNING, logger="my_service"):
        for _ in range(2):
            with pytest.raises(Exception):  # noqa: B017
                call_reranker("q", [])
    name = call_reranker.breaker.name
    assert [r.getMessage() for r in caplog.records if r.name == "my_service"] == [
        f"breaker {name}: closed -> open"
    ]


@pytest.fixture
def global_metrics() -> Iterator[None]:
    """The README registers into prometheus-client's global registry: undo it afterwards."""
    from tripwise.observe import prometheus

    before = list(prometheus._installed)
    yield
    for collector in list(prometheus._installed):
        if collector not in before:
            collector.unregister()


def test_prometheus_integration(models: Models, global_metrics: None) -> None:
    from prometheus_client import REGISTRY

    from tripwise import circuit_breaker, consecutive_failures

    @circuit_breaker(name="readme-reranker", trip_on=consecutive_failures(5))
    def call_reranker(query, candidates):  # type: ignore[no-untyped-def]
        return models.reranker_model(query, candidates)

    # --- README ---------------------------------------------------------------------------
    from tripwise.metrics import PrometheusMetrics

    PrometheusMetrics.register()  # call once at startup
    # --------------------------------------------------------------------------------------
    PrometheusMetrics.register()  # again: a no-op, as in ml-breaker
    call_reranker("q", ["a"])
    labels = {"name": "readme-reranker"}
    assert REGISTRY.get_sample_value("ml_breaker_state", labels) == 0.0  # CLOSED
    assert REGISTRY.get_sample_value("ml_breaker_trip_total", labels) == 0.0
    ok = {**labels, "outcome": "success"}
    assert REGISTRY.get_sample_value("ml_breaker_call_total", ok) == 1.0
    assert REGISTRY.get_sample_value("ml_breaker_latency_ms_count", labels) == 1.0
    from tripwise._metrics import PrometheusMetrics as AtTheModulePath  # ml_breaker._metrics

    assert AtTheModulePath is PrometheusMetrics
