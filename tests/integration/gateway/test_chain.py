"""The fallback chain through a real gateway process, driven by the official openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.gateway.conftest import chain_config
from tests.support.fake_llm import Fault

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=10)


def post(url: str, body: dict, **kw: object) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=10, **kw)


def test_primary_healthy_json_and_stream_through_the_sdk(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    client = sdk(g.url)
    raw = client.chat.completions.with_raw_response.create(model="llama", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == "The answer is 4"
    assert raw.headers["x-tripwise-backend"] == "max_gpu"
    assert raw.headers["x-tripwise-tier"] == "1"
    assert raw.headers["x-tripwise-attempts"] == "1"
    assert "x-tripwise-fallback-reason" not in raw.headers
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="llama", messages=HELLO, stream=True)
        if c.choices
    )
    assert text == "The answer is 4"
    assert len(secondary.requests) == 0


def test_seed_curl_without_model_works(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    r = httpx.post(
        g.url + "/v1/chat/completions",
        content=b'{"messages": [{"role": "user", "content": "Hello"}]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "The answer is 4"


def test_primary_500_fails_over_to_ollama(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("status", status=500))
    raw = sdk(g.url).chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert raw.parse().choices[0].message.content == "The answer is 4"
    assert raw.headers["x-tripwise-backend"] == "ollama_cpu"
    assert raw.headers["x-tripwise-tier"] == "2"
    assert raw.headers["x-tripwise-attempts"] == "2"
    assert raw.headers["x-tripwise-fallback-reason"] == "max_gpu=error:500"
    assert secondary.requests[-1][0] == "/api/chat"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "quality:empty"),
        ("length", "quality:truncated"),
        ("refusal", "quality:refusal"),
    ],
)
def test_bad_answers_fail_over_and_open_the_breaker(
    primary, secondary, gateway, kind, reason
) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.default = Fault(kind)
    for _ in range(3):
        r = post(g.url, {"model": "m", "messages": HELLO})
        assert r.status_code == 200
        assert r.headers["x-tripwise-backend"] == "ollama_cpu"
        assert r.headers["x-tripwise-fallback-reason"] == f"max_gpu={reason}"
    status = httpx.get(g.url + "/circuit-breakers").json()["circuit_breakers"]["max_gpu"]
    assert status["state"] == "open"
    assert status["reason"] == reason
    calls = len(primary.requests)
    r = post(g.url, {"model": "m", "messages": HELLO})
    assert r.headers["x-tripwise-fallback-reason"] == "max_gpu=breaker_open"
    assert r.headers["x-tripwise-attempts"] == "1"
    assert len(primary.requests) == calls  # an open breaker sends nothing upstream


def test_invalid_json_against_the_requested_schema_fails_over(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary, secondary_type="openai"))
    primary.script(Fault("invalid_json"))
    secondary.default = Fault("content", text='{"answer": 4}')
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    body = {
        "model": "m",
        "messages": HELLO,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    }
    r = post(g.url, body)
    assert r.status_code == 200
    assert r.headers["x-tripwise-fallback-reason"] == "max_gpu=quality:invalid_json"
    assert r.json()["choices"][0]["message"]["content"] == '{"answer": 4}'
    primary.script(Fault("content", text='{"answer": "four"}'))
    r = post(g.url, body)
    assert r.headers["x-tripwise-fallback-reason"] == "max_gpu=quality:json_schema"


def test_both_live_backends_down_cache_with_age_then_degraded(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    good = post(g.url, {"model": "m", "messages": HELLO})
    assert good.headers["x-tripwise-backend"] == "max_gpu"
    primary.default = Fault("status", status=503)
    secondary.default = Fault("status", status=500)
    cached = post(g.url, {"model": "m", "messages": HELLO})
    assert cached.status_code == 200
    assert cached.headers["x-tripwise-backend"] == "cache"
    assert cached.headers["x-tripwise-tier"] == "3"
    assert int(cached.headers["x-tripwise-cache-age"]) >= 0
    assert cached.headers["age"] == cached.headers["x-tripwise-cache-age"]
    assert cached.json()["choices"][0]["message"]["content"] == "The answer is 4"
    assert cached.headers["x-tripwise-fallback-reason"] == (
        "max_gpu=error:503, ollama_cpu=error:500"
    )
    other = post(g.url, {"model": "m", "messages": [{"role": "user", "content": "new question"}]})
    assert other.status_code == 200
    assert other.headers["x-tripwise-backend"] == "degraded"
    assert other.headers["x-tripwise-tier"] == "4"
    assert other.json()["choices"][0]["message"]["content"] == "Service temporarily unavailable"
    assert "cache=cache_miss" in other.headers["x-tripwise-fallback-reason"]
    # a streaming client gets the cached answer as a stream
    with httpx.stream(
        "POST",
        g.url + "/v1/chat/completions",
        json={"model": "m", "messages": HELLO, "stream": True},
    ) as resp:
        assert resp.headers["x-tripwise-backend"] == "cache"
        body = resp.read().decode()
    assert "The answer is 4" in body and body.rstrip().endswith("data: [DONE]")


def test_metrics_serve_the_seed_queries_and_native_names(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("status", status=500))
    post(g.url, {"model": "m", "messages": HELLO})
    post(g.url, {"model": "m", "messages": HELLO})
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(g.url + "/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("circuit_breaker_state", (("name", "max_gpu"),))] == 1.0  # closed
    assert samples[("circuit_breaker_requests_total", (("name", "max_gpu"),))] == 2
    assert samples[("circuit_breaker_failures_total", (("name", "max_gpu"),))] == 1
    assert samples[("fallback_chain_tier_usage", (("chain", "*"), ("tier", "ollama_cpu")))] == 1
    assert samples[("fallback_chain_tier_usage", (("chain", "*"), ("tier", "max_gpu")))] == 1
    assert samples[("tripwise_breaker_state", (("name", "max_gpu"),))] == 0.0
    assert (
        samples[("tripwise_fallback_tier_usage_total", (("chain", "*"), ("tier", "max_gpu")))] == 1
    )


def test_circuit_breakers_endpoint_has_the_seed_shape(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    post(g.url, {"model": "m", "messages": HELLO})
    data = httpx.get(g.url + "/circuit-breakers").json()
    entry = data["circuit_breakers"]["max_gpu"]
    for key in (
        "state",
        "total_requests",
        "total_successes",
        "total_failures",
        "total_timeouts",
        "uptime_seconds",
    ):
        assert key in entry
    assert entry["state"] == "closed"
    assert entry["total_requests"] == 1 and entry["total_successes"] == 1
    assert entry["next_probe_at"] is None
    assert data["routes"]["*"]["tier_usage"]["max_gpu"] == 1


def test_models_lists_routes(primary, secondary, gateway) -> None:
    extra = "  llama:\n    chain: [max_gpu, degraded]\n"
    g = gateway(chain_config(primary, secondary, extra_routes=extra))
    models = sdk(g.url).models.list()
    assert [m.id for m in models.data] == ["llama"]


def test_route_deadline_skips_the_remaining_live_backends(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary, route="deadline: 0.5"))
    primary.script(Fault("slow_first_token", delay=2))
    r = post(g.url, {"model": "m", "messages": HELLO})
    assert r.status_code == 200
    assert r.headers["x-tripwise-backend"] == "degraded"
    assert r.headers["x-tripwise-fallback-reason"] == (
        "max_gpu=error:timeout, ollama_cpu=deadline, cache=cache_miss"
    )
    assert len(secondary.requests) == 0


def test_retry_with_backoff_on_the_same_backend(primary, secondary, gateway) -> None:
    cfg = chain_config(primary, secondary).replace(
        "    breaker: {failure_threshold: 3, recovery_timeout: 30}\n  ollama_cpu:",
        "    breaker: {failure_threshold: 3, recovery_timeout: 30}\n"
        "    retry: {attempts: 2, backoff: {initial: 0.01, max_delay: 0.05}}\n  ollama_cpu:",
        1,
    )
    g = gateway(cfg)
    primary.script(Fault("status", status=503))
    r = post(g.url, {"model": "m", "messages": HELLO})
    assert r.headers["x-tripwise-backend"] == "max_gpu"  # the retry answered
    assert r.headers["x-tripwise-attempts"] == "2"
    assert r.headers["x-tripwise-fallback-reason"] == "max_gpu=error:503"
    # a 4xx is the request's fault: no retry, no failover, passed back as is
    primary.script(Fault("status", status=400))
    r = post(g.url, {"model": "m", "messages": HELLO})
    assert r.status_code == 400
    assert r.headers["x-tripwise-attempts"] == "1"
    assert r.json()["error"]["code"] == "error:400"
    assert len(secondary.requests) == 0
    breaker = httpx.get(g.url + "/circuit-breakers/max_gpu").json()
    assert breaker["total_failures"] == 1  # the 503 only; the 400 did not count


def test_a_quality_condition_trips_on_bad_answers(primary, secondary, gateway) -> None:
    breaker = (
        "{trip_on: {low_quality_rate_above: {rate: 0.5, threshold: 0.5, window: 4,"
        " min_calls: 4}}, recovery_timeout: 30}"
    )
    g = gateway(chain_config(primary, secondary, breaker=breaker))
    primary.script(Fault("ok"), Fault("ok"))
    primary.default = Fault("refusal")
    reasons = [
        post(g.url, {"model": "m", "messages": HELLO}).headers.get("x-tripwise-fallback-reason")
        for _ in range(6)
    ]
    assert reasons[:2] == [None, None]
    assert reasons[2:5] == ["max_gpu=quality:refusal"] * 3
    status = httpx.get(g.url + "/circuit-breakers/max_gpu").json()
    assert status["state"] == "open"  # 3 of the last 4 answers scored below 0.5
    assert status["quality_count"] == 5  # bad answers were heard as scores, not errors
    assert status["total_failures"] == 0
    assert reasons[5] == "max_gpu=breaker_open"
