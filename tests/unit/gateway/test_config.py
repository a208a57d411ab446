"""The gateway config: validated once, every problem with file, line and key."""

from __future__ import annotations

import pytest

from tripwise.gateway.config import ConfigError, build_condition, parse_config

GOOD = """
listen: {host: 0.0.0.0, port: 9000}
admin_key: ${TW_TEST_ADMIN:-fallback-key}
backends:
  max_gpu:
    type: openai
    url: http://max-serve:8080/v1/
    api_key: ${TW_TEST_API_KEY}
    breaker:
      trip_on:
        any_of:
          - consecutive_failures: 3
          - low_quality_rate_above: {rate: 0.5, threshold: 0.5, window: 10}
  ollama_cpu: {type: ollama, url: "http://ollama:11434"}
  cache: {type: cache, ttl: 60}
  degraded: {type: degraded, message: "{model} is resting"}
routes:
  "*": {chain: [max_gpu, ollama_cpu, cache, degraded], when_all_open: wait, wait_ms: 250}
  solo: {chain: [max_gpu], hold: {tokens: 5}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "gw.yaml")
    return info.value.problems


def test_a_good_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TEST_API_KEY", "sk-test")
    monkeypatch.delenv("TW_TEST_ADMIN", raising=False)
    cfg = parse_config(GOOD, "gw.yaml")
    assert (cfg.host, cfg.port, cfg.admin_key) == ("0.0.0.0", 9000, "fallback-key")
    gpu = cfg.backends["max_gpu"]
    assert gpu.url == "http://max-serve:8080/v1" and gpu.api_key == "sk-test"
    assert cfg.routes["*"].when_all_open == "wait" and cfg.routes["*"].wait_ms == 250
    assert cfg.routes["*"].hold.armed  # default hold window on a multi-tier route
    assert cfg.routes["solo"].hold.tokens == 5 and cfg.routes["solo"].hold.chars == 0
    assert cfg.route_for("llama") is cfg.routes["*"]
    assert cfg.route_for("solo") is cfg.routes["solo"]
    assert repr(build_condition(gpu.breaker.trip_on)).startswith("any_of(")


def test_every_problem_is_reported_with_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_TEST_MISSING", raising=False)
    text = (
        "backends:\n"  # 1
        "  a:\n"  # 2
        "    type: openai\n"  # 3
        "    url: ftp://x\n"  # 4
        "    timeout: -1\n"  # 5
        "    api_key: ${TW_TEST_MISSING}\n"  # 6
        "    retry: {attempts: 0}\n"  # 7
        "    breaker: {trip_on: {error_rate_above: {rate: 3}}}\n"  # 8
        "    colour: blue\n"  # 9
        "  b: {type: quantum}\n"  # 10
        "  c: {type: cache, store: redis}\n"  # 11
        "routes:\n"  # 12
        "  '*':\n"  # 13
        "    chain: [a, nope, a]\n"  # 14
        "    when_all_open: panic\n"  # 15
        "    deadline: 0\n"  # 16
    )
    found = problems(text)
    expected = [
        "gw.yaml:4: backends.a.url: must start with http:// or https://",
        "gw.yaml:5: backends.a.timeout: must be a number > 0, got -1",
        "gw.yaml:6: backends.a.api_key: environment variable TW_TEST_MISSING is not set",
        "gw.yaml:7: backends.a.retry.attempts: must be an integer in [1, 10], got 0",
        "gw.yaml:8: backends.a.breaker.trip_on: rate must be in [0, 1], got 3",
        "gw.yaml:9: backends.a.colour: unknown key",
        "gw.yaml:10: backends.b.type: must be one of openai, ollama, cache, degraded",
        "gw.yaml:11: backends.c.store: store: redis needs redis.url",
        "gw.yaml:14: routes.*.chain.1: unknown backend 'nope'",
        "gw.yaml:14: routes.*.chain: a backend appears twice in the chain",
        "gw.yaml:15: routes.*.when_all_open: must be one of degrade, fail_fast, wait",
        "gw.yaml:16: routes.*.deadline: must be a number > 0, got 0",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in found), (line, found)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("", "gw.yaml:1: (top level): the file is empty"),
        ("[1, 2]", "gw.yaml:1: (top level): must be a mapping"),
        ("backends: {a: {type: degraded}\n", "gw.yaml:2: (syntax)"),
        ("backends: {a: {type: degraded}}", "gw.yaml:1: routes: missing"),
        ("routes: {'*': {chain: [x]}}", "gw.yaml:1: backends: missing"),
        (
            "backends: {a: {type: degraded}}\nroutes: {'*': {chain: []}}",
            "gw.yaml:2: routes.*.chain: must be a non-empty list",
        ),
        (
            "backends: {a: {type: degraded}}\nbackends: {}\nroutes: {'*': {chain: [a]}}",
            "gw.yaml:2: backends: duplicate key",
        ),
        (
            "backends: {a: {type: openai, url: 'http://x', timeout: .nan}}\n"
            "routes: {'*': {chain: [a]}}",
            "gw.yaml:1: backends.a.timeout: must be a number > 0",
        ),
        (
            "backends: {a: {type: openai, url: 'http://x', breaker: {trip_on: {bogus: 1}}}}\n"
            "routes: {'*': {chain: [a]}}",
            "gw.yaml:1: backends.a.breaker.trip_on: unknown condition 'bogus'",
        ),
    ],
)
def test_structural_problems(text: str, start: str) -> None:
    found = problems(text)
    assert any(p.startswith(start) for p in found), found


def test_the_seed_breaker_vocabulary_maps_to_tripwise() -> None:
    cfg = parse_config(
        "backends:\n"
        "  a: {type: openai, url: 'http://x/v1', breaker: {failure_threshold: 5,"
        " recovery_timeout: 10, success_threshold: 3}}\n"
        "routes: {'*': {chain: [a]}}\n"
    )
    b = cfg.backends["a"].breaker
    assert b.trip_on == {"consecutive_failures": 5}
    assert (b.half_open_after, b.recovery_threshold) == (10.0, 3)
