"""BreakerTransport / AsyncBreakerTransport on httpx and httpx2, with mock inner transports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest

from tripwise import FakeClock, Registry, State, consecutive_failures
from tripwise.http import AsyncBreakerTransport, BreakerTransport, Fallback
from tripwise.policies import Backoff, FakeSleeper, Retry

LIBS = [httpx, httpx2]


class Upstream:
    """A scripted upstream: each request pops the next (status, body, headers) answer; the
    streams it hands out record whether they were closed."""

    def __init__(self, lib: Any, *answers: Any) -> None:
        self.lib = lib
        self.answers = list(answers)
        self.requests: list[Any] = []
        self.streams: list[TrackedStream] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else (200, {"ok": True})
        if isinstance(answer, Exception):
            raise answer
        status, body, *rest = answer
        headers = rest[0] if rest else {}
        stream = TrackedStream(self.lib, json.dumps(body).encode())
        self.streams.append(stream)
        return self.lib.Response(
            status, headers={"content-type": "application/json", **headers}, stream=stream
        )


def TrackedStream(lib: Any, data: bytes) -> Any:
    class _Tracked(lib.SyncByteStream, lib.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.closed = False
            self.read = False

        def __iter__(self) -> Iterator[bytes]:
            self.read = True
            yield data

        async def __aiter__(self) -> Any:
            self.read = True
            yield data

        def close(self) -> None:
            self.closed = True

        async def aclose(self) -> None:
            self.closed = True

    return _Tracked()


def make(
    lib: Any, upstream: Upstream, *, asynchronous: bool = False, **kwargs: Any
) -> tuple[Any, Any]:
    kwargs.setdefault("registry", Registry())
    if asynchronous:
        t = AsyncBreakerTransport(lib.MockTransport(upstream), **kwargs)
        return lib.AsyncClient(transport=t, base_url="http://api.test/v1"), t
    t = BreakerTransport(lib.MockTransport(upstream), **kwargs)
    return lib.Client(transport=t, base_url="http://api.test/v1"), t


def fake_retry(attempts: int, **kwargs: Any) -> tuple[Retry, FakeSleeper]:
    sleeper = FakeSleeper(FakeClock())
    retry = Retry(
        attempts,
        backoff=Backoff(0.1, jitter="none"),
        sleep=sleeper.sleep,
        async_sleep=sleeper.async_sleep,
        clock=sleeper.clock,
        **kwargs,
    )
    return retry, sleeper


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_5xx_429_and_connection_errors_count_other_4xx_do_not(lib: Any) -> None:
    up = Upstream(
        lib,
        (500, {}),
        (404, {}),
        (429, {}),
        lib.ConnectError("refused"),
        (503, {}),
    )
    client, t = make(lib, up, trip_on=consecutive_failures(2))
    assert client.get("/a").status_code == 500
    assert client.get("/a").status_code == 404  # a 404 is a success: it resets the streak
    assert client.get("/a").status_code == 429
    with pytest.raises(lib.ConnectError):
        client.get("/a")  # second failure in a row: the breaker opens
    (breaker,) = t.breakers().values()
    assert breaker.state is State.OPEN
    r = client.get("/a")
    assert r.status_code == 503
    assert len(up.requests) == 4  # the open breaker answered without calling upstream


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_open_breaker_answers_openai_shaped_503(lib: Any) -> None:
    up = Upstream(lib, (500, {}))
    client, _t = make(lib, up, trip_on=consecutive_failures(1), half_open_after=12.2)
    client.post("/chat/completions", json={})
    r = client.post("/chat/completions", json={})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "13"
    assert r.headers["x-should-retry"] == "false"
    error = r.json()["error"]
    assert error["type"] == error["code"] == "circuit_breaker_open"
    assert "message" in error and error["param"] is None
    assert r.headers["x-tripwise-breaker"] == "http:http://api.test:80"


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_retry_honours_retry_after_and_closes_discarded_answers(lib: Any) -> None:
    up = Upstream(lib, (429, {}, {"Retry-After": "3"}), (500, {}), (200, {"answer": 4}))
    retry, sleeper = fake_retry(3)
    client, _ = make(lib, up, retry=retry)
    with client.stream("GET", "/x") as r:
        # the two failed answers were closed; the one handed to the caller is still open
        assert [s.closed for s in up.streams] == [True, True, False]
        assert r.status_code == 200 and json.loads(r.read()) == {"answer": 4}
    assert sleeper.sleeps[0] >= 3.0  # Retry-After wins over the 0.1 s backoff
    assert sleeper.sleeps[1] == pytest.approx(0.2)


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_when_retries_run_out_the_caller_gets_the_last_upstream_answer(lib: Any) -> None:
    up = Upstream(lib, (500, {"n": 1}), (502, {"n": 2}))
    retry, _ = fake_retry(2)
    client, _ = make(lib, up, retry=retry)
    r = client.get("/x")
    assert r.status_code == 502 and r.json() == {"n": 2}


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_fallback_rewrites_base_url_model_and_headers(lib: Any) -> None:
    up = Upstream(lib, (500, {}), (200, {"from": "local"}))
    client, t = make(
        lib,
        up,
        base_path="/v1",
        fallback=[Fallback("http://local.test:11434/v1", model="llama3.2", headers={"x-k": "1"})],
    )
    r = client.post("/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert r.json() == {"from": "local"}
    _first, second = up.requests
    assert str(second.url) == "http://local.test:11434/v1/chat/completions"
    assert second.headers["host"] == "local.test:11434"
    assert second.headers["x-k"] == "1"
    assert json.loads(second.content)["model"] == "llama3.2"
    assert up.streams[0].closed  # the primary's 500 was discarded
    assert set(t.breakers()) == {"http://api.test:80", "http://local.test:11434"}


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_open_primary_goes_straight_to_the_fallback(lib: Any) -> None:
    up = Upstream(lib, (500, {}), (200, {"n": 1}), (200, {"n": 2}))
    client, _ = make(lib, up, trip_on=consecutive_failures(1), fallback="http://b.test")
    client.get("/x")
    assert client.get("/x").json() == {"n": 2}
    assert [r.url.host for r in up.requests] == ["api.test", "b.test", "b.test"]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_synthetic_fallback_answer(lib: Any) -> None:
    up = Upstream(lib, (500, {}))
    client, _ = make(lib, up, fallback=(200, {"cached": True}))
    r = client.get("/x")
    assert r.status_code == 200 and r.json() == {"cached": True}
    assert up.streams[0].closed


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_body_checks_are_quality_failures_that_open_the_breaker(lib: Any) -> None:
    def has_answer(response: Any) -> float:
        return 1.0 if response.json().get("answer") else 0.0

    up = Upstream(lib, (200, {"answer": ""}), (200, {"answer": ""}), (200, {"answer": "4"}))
    client, t = make(lib, up, checks=[has_answer], trip_on=consecutive_failures(2))
    r = client.get("/x")
    assert r.status_code == 200 and r.json() == {"answer": ""}  # the bad 200 stays a 200
    client.get("/x")
    (breaker,) = t.breakers().values()
    assert breaker.state is State.OPEN
    assert client.get("/x").status_code == 503


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_streaming_responses_pass_through_unread(lib: Any) -> None:
    def upstream(request: Any) -> Any:
        return lib.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    stream = TrackedStream(lib, b"data: 1\n\n")
    t = BreakerTransport(lib.MockTransport(upstream), checks=[lambda r: 0.0], registry=Registry())
    with lib.Client(transport=t) as client, client.stream("GET", "http://s.test/") as r:
        assert not stream.read  # nor checked: no stream check is configured
        assert r.read() == b"data: 1\n\n"


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_key_by_model_gives_one_breaker_per_model(lib: Any) -> None:
    up = Upstream(lib)
    client, t = make(lib, up, key="model")
    client.post("/chat/completions", json={"model": "a"})
    client.post("/chat/completions", json={"model": "b"})
    assert sorted(t.breakers()) == ["http://api.test:80#a", "http://api.test:80#b"]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
async def test_async_transport_retries_falls_back_and_opens(lib: Any) -> None:
    up = Upstream(lib, (500, {}), (500, {}), (200, {"n": "fb"}), (500, {}))
    retry, sleeper = fake_retry(2)
    client, t = make(
        lib,
        up,
        asynchronous=True,
        retry=retry,
        fallback="http://b.test",
        trip_on=consecutive_failures(2),
    )
    async with client:
        r = await client.get("/x")
        assert r.json() == {"n": "fb"}
        assert up.streams[0].closed and up.streams[1].closed
        assert t.breaker("http://api.test:80").state is State.OPEN
        assert len(sleeper.sleeps) == 1


def test_transports_of_one_registry_share_breakers_by_name() -> None:
    reg = Registry()
    up = Upstream(httpx, (500, {}))
    _, a = make(httpx, up, registry=reg)
    _, b = make(httpx2, Upstream(httpx2), registry=reg)
    assert a.breaker("k") is b.breaker("k")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "host"}, "key must be one of"),
        ({"failure_statuses": [700]}, "failure_statuses"),
        ({"retry": "3"}, "retry must be"),
        ({"fallback": "ftp://x"}, "fallback base_url"),
        ({"fallback": (999, {})}, "status must be 100-599"),
        ({"half_open_after": -1}, "half_open_after"),
        ({"checks": ["non_empty"]}, "checks must be callables"),
        ({"base_path": "v1"}, "base_path"),
        ({"trip_on": 3}, "trip_on"),
        ({"inner": object()}, "inner must be"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        BreakerTransport(**kwargs)


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_a_check_that_cannot_read_the_body_is_a_failed_check(lib: Any) -> None:
    def needs_field(response: Any) -> float:
        return 1.0 if response.json()["answer"] else 0.0

    up = Upstream(lib, (200, {"other": 1}))
    client, t = make(lib, up, checks=[needs_field], trip_on=consecutive_failures(1))
    assert client.get("/x").json() == {"other": 1}
    assert t.breaker("http://api.test:80").state is State.OPEN
