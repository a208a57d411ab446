"""Bad input to clients, timeouts and the service fails at construction with a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from tripwise.llm import LLMService, OllamaClient, OpenAIClient, Timeouts
from tripwise.policies import HealthChecker


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"connect": -1}, ValueError, "connect must be a finite number of seconds > 0"),
        ({"stall": 0}, ValueError, "stall"),
        ({"total": float("nan")}, ValueError, "total"),
        ({"first_token": "5"}, TypeError, "first_token must be a number"),
    ],
)
def test_timeouts(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Timeouts(**kwargs)


def test_timeouts_of_a_number_caps_the_others() -> None:
    t = Timeouts.of(3)
    assert (t.connect, t.first_token, t.stall, t.total) == (3.0, 3.0, 3.0, 3.0)
    with pytest.raises(ValueError, match="unknown timeouts"):
        Timeouts.of({"read": 1})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"base_url": "localhost:8000"}, ValueError, "base_url must be an http"),
        ({"model": ""}, ValueError, "model must be a non-empty string"),
        ({"checks": ["empty"]}, ValueError, "unknown check 'empty'"),
        ({"timeouts": {"total": -5}}, ValueError, "total"),
        ({"breaker": "yes"}, TypeError, "breaker must be"),
    ],
)
def test_client_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    args = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "breaker": False, **kwargs}
    with pytest.raises(error, match=match):
        OpenAIClient(**args)


def test_ollama_client_arguments() -> None:
    with pytest.raises(ValueError, match="api must be 'chat' or 'generate'"):
        OllamaClient("http://127.0.0.1:1", "m", api="embed", breaker=False)
    assert OllamaClient("http://h:11434/v1", "m", breaker=False).base_url == "http://h:11434"


def test_client_call_arguments() -> None:
    c = OpenAIClient("http://127.0.0.1:1/v1", "m", breaker=False)
    with pytest.raises(ValueError, match="messages must be a non-empty list"):
        c.chat([])
    with pytest.raises(TypeError, match="prompt must be a string"):
        c.complete(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        c.complete("x", timeout=-1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeouts": (10, 20)}, ValueError, "timeouts must have 3 values"),
        ({"timeouts": (10, -1, 3)}, ValueError, "timeouts must hold numbers > 0"),
        ({"waits": (2, "5")}, TypeError, "waits must hold finite numbers"),
        ({"jitter": 1.5}, ValueError, "jitter must be a number in"),
        ({"api": "anthropic"}, ValueError, "api must be 'openai' or 'ollama'"),
        ({"fallback_model": "x"}, ValueError, "fallback_model needs a fallback_base_url"),
        ({"checks": ["nope"]}, ValueError, "unknown check"),
        ({"enable_circuit_breaker": 1}, TypeError, "enable_circuit_breaker"),
        ({"health_checker": object()}, TypeError, "health_checker must be"),
    ],
)
def test_service_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        LLMService(base_url="http://127.0.0.1:1/v1", **kwargs)


def test_service_registers_each_endpoint_once_with_the_seed_defaults() -> None:
    checker = HealthChecker(registry=None)
    svc = LLMService(
        base_url="http://cloud.test/v1",
        fallback_base_url="http://local.test:11434/v1",
        health_checker=checker,
    )
    assert checker.endpoints() == ["http://cloud.test/v1", "http://local.test:11434/v1"]
    b = checker.breaker("http://cloud.test/v1")
    assert b.half_open_after == 60.0
    assert svc.timeouts == (10.0, 20.0, 30.0) and svc.waits == (2.0, 5.0)
    LLMService(base_url="http://cloud.test/v1", health_checker=checker)
    assert checker.breaker("http://cloud.test/v1") is b  # an existing registration is kept


def test_clients_of_one_backend_share_its_breaker() -> None:
    from tripwise import Registry

    reg = Registry()
    a = OpenAIClient("http://127.0.0.1:1/v1", "m", registry=reg)
    b = OpenAIClient("http://127.0.0.1:1/v1", "m", registry=reg)
    c = OpenAIClient("http://127.0.0.1:1/v1", "other", registry=reg)
    assert a.breaker is b.breaker is not None
    assert c.breaker is not a.breaker
    assert a.breaker.name == "llm:http://127.0.0.1:1/v1#m"
