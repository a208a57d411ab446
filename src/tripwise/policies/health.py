"""Active health checks that feed an endpoint's circuit breaker.

Each registered endpoint gets a breaker (opens after ``failure_threshold`` consecutive failed
requests, probes again after ``recovery_timeout_seconds``) and, while the checker runs, a
background probe every ``interval`` seconds (± ``jitter``): an HTTP GET of its health URL with
httpx, or any async callable. Probe results feed the breaker:

- a passing probe while the breaker is OPEN ends the cool-down early (HALF_OPEN: the next real
  request is the trial call);
- ``failure_threshold`` failing probes in a row open a CLOSED breaker before users hit errors.

Requests themselves go through :meth:`HealthChecker.call` / :meth:`~HealthChecker.acall` (or
``checker.breaker(endpoint)``), which is what the request counters and averages describe. A
request that returns normally can still be a failure: ``is_failure(result)`` decides (by default
:func:`server_error`: a response whose ``status_code`` is 500 or more, such as what
``requests.post`` or httpx return for a broken server, counts as failed).

HTTP probes (endpoints registered without ``probe=``) use httpx, from the ``client`` extra;
without it ``HealthChecker()`` refuses to be built unless ``http=False`` (callable probes
only), rather than reporting every healthy endpoint down.
Run it inside an event loop (``await checker.start()`` / ``await checker.stop()``, or
``async with checker:``) or in its own thread for sync apps (``start_in_thread()`` /
``stop_thread()``). Stopping cancels and awaits every task and joins the thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.clock import Clock
from tripwise.core.conditions import consecutive_failures
from tripwise.core.records import CallRecord
from tripwise.core.registry import Registry
from tripwise.core.states import State
from tripwise.core.validation import check_int, check_positive
from tripwise.policies._checks import check_rng
from tripwise.policies.timeout import Timeout

logger = logging.getLogger("tripwise.policies.health")

Probe = Callable[[], Awaitable[Any]]
ResultCheck = Callable[[Any], bool]
_DEFAULT_REGISTRY: Any = object()
_DEFAULT_CHECK: Any = object()


def server_error(result: Any) -> bool:
    """True for an HTTP response (requests, httpx, ...) whose ``status_code`` is 500 or more: the
    default ``is_failure`` of a checker. Values without an integer ``status_code`` pass."""
    status = getattr(result, "status_code", None)
    return isinstance(status, int) and not isinstance(status, bool) and status >= 500


def _check_result_check(value: Any) -> ResultCheck | None:
    if value is not None and not callable(value):
        raise TypeError(
            f"is_failure must be a callable taking the result (True: the call failed) or None, "
            f"got {value!r}"
        )
    return value  # type: ignore[no-any-return]


def _require_httpx() -> None:
    try:
        import httpx  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "HealthChecker probes endpoints over HTTP with httpx, which is not installed: "
            "pip install 'tripwise[client]' (from a clone: pip install '.[client]'). To probe "
            "only with callables, build it with HealthChecker(http=False) and pass probe= to "
            "register_endpoint()."
        ) from exc


@dataclasses.dataclass(frozen=True)
class HealthStatus:
    """The health of one endpoint at one moment. Timestamps are Unix epoch seconds."""

    endpoint: str
    state: State
    consecutive_failures: int
    total_requests: int
    total_failures: int
    failure_rate: float
    avg_response_time_ms: float | None
    last_health_check: float | None
    last_healthy_at: float | None
    last_probe_ok: bool | None
    total_probes: int
    probe_failures: int

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["state"] = self.state.value
        return d


class _Endpoint:
    """Counters of one endpoint; also the listener on its breaker."""

    def __init__(
        self,
        endpoint: str,
        breaker: CircuitBreaker,
        probe: Probe | None,
        health_url: str,
        interval: float,
        timeout: float,
        failure_threshold: int,
    ) -> None:
        self.endpoint = endpoint
        self.breaker = breaker
        self.probe = probe
        self.health_url = health_url
        self.interval = interval
        self.timeout = Timeout(timeout)
        self.failure_threshold = failure_threshold
        self.lock = threading.Lock()
        self.requests = self.failures = self.consecutive = 0
        self.latency_sum = 0.0
        self.timed = 0
        self.last_check: float | None = None
        self.last_healthy: float | None = None
        self.last_probe_ok: bool | None = None
        self.probes = self.probe_failures = self.probe_streak = 0

    def on_call(self, breaker: CircuitBreaker, record: CallRecord | None, outcome: str) -> None:
        if record is None:
            return
        with self.lock:
            self.requests += 1
            self.latency_sum += record.latency_ms
            self.timed += 1
            if outcome == "failure":
                self.failures += 1
                self.consecutive += 1
            else:
                self.consecutive = 0
                self.last_healthy = time.time()


class HealthChecker:
    """Health-checked endpoints, each with its own breaker and background probe.

    ``interval``/``timeout``/``jitter`` are defaults for endpoints; ``health_path`` is appended
    to an endpoint URL when no ``health_url`` is given. ``is_failure(result)`` says whether a
    request that returned ``result`` failed (default :func:`server_error`; None: any returned
    value is a success); endpoints may override it. ``http=False`` allows callable probes only
    (and no httpx). ``clock`` drives the breakers, ``async_sleep`` and ``rng`` the probe
    schedule (injectable for tests).
    """

    def __init__(
        self,
        *,
        interval: float = 30.0,
        timeout: float = 5.0,
        jitter: float = 0.1,
        health_path: str = "/health",
        is_failure: ResultCheck | None = server_error,
        http: bool = True,
        registry: Registry | None = _DEFAULT_REGISTRY,
        clock: Clock | None = None,
        async_sleep: Callable[[float], Awaitable[Any]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = check_positive("interval", interval)
        self.timeout = check_positive("timeout", timeout)
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise ValueError(f"jitter must be a number in [0, 1), got {jitter!r}")
        self.jitter = float(jitter)
        if not isinstance(health_path, str):
            raise TypeError(f"health_path must be a string, got {health_path!r}")
        self.health_path = health_path
        self.is_failure = _check_result_check(is_failure)
        if not isinstance(http, bool):
            raise TypeError(f"http must be True or False, got {http!r}")
        if http:
            _require_httpx()
        self.http = http
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        if async_sleep is not None and not callable(async_sleep):
            raise TypeError(f"async_sleep must be an async callable, got {async_sleep!r}")
        if registry is _DEFAULT_REGISTRY:
            from tripwise.core.registry import default_registry

            registry = default_registry
        if registry is not None and not isinstance(registry, Registry):
            raise TypeError(f"registry must be a tripwise Registry or None, got {registry!r}")
        self.registry: Registry | None = registry
        self._clock = clock
        self._sleep = async_sleep if async_sleep is not None else asyncio.sleep
        self._rng = check_rng(rng) if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._thread_stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ endpoints

    def register_endpoint(
        self,
        endpoint: str,
        failure_threshold: int = 3,
        recovery_timeout_seconds: float = 60.0,
        *,
        health_url: str | None = None,
        probe: Probe | None = None,
        interval: float | None = None,
        timeout: float | None = None,
        is_failure: ResultCheck | None = _DEFAULT_CHECK,
    ) -> HealthStatus:
        """Watch ``endpoint``; returns its (fresh) status. Registering again replaces it.

        ``is_failure`` overrides the checker's result check for this endpoint's requests."""
        if not isinstance(endpoint, str) or not endpoint:
            raise TypeError(f"endpoint must be a non-empty string, got {endpoint!r}")
        check_int("failure_threshold", failure_threshold)
        recovery = check_positive("recovery_timeout_seconds", recovery_timeout_seconds)
        if probe is not None and not callable(probe):
            raise TypeError(f"probe must be an async callable, got {probe!r}")
        if probe is None and not self.http:
            raise ValueError(
                f"endpoint {endpoint!r} needs probe=: this checker was built with http=False"
            )
        if health_url is not None and not isinstance(health_url, str):
            raise TypeError(f"health_url must be a string, got {health_url!r}")
        check = self.is_failure if is_failure is _DEFAULT_CHECK else _check_result_check(is_failure)
        url = health_url if health_url is not None else endpoint.rstrip("/") + self.health_path
        with self._lock:
            previous = self._endpoints.get(endpoint)
        registry = self.registry
        if (
            previous is not None
            and registry is not None
            and registry.find(endpoint) is (previous.breaker)
        ):
            registry.remove(endpoint)  # re-registration replaces our own breaker
        breaker = CircuitBreaker(
            consecutive_failures(failure_threshold),
            name=endpoint,
            half_open_after=recovery,
            recovery_threshold=1,
            result_predicate=check,
            clock=self._clock,
            registry=self.registry,
        )
        state = _Endpoint(
            endpoint,
            breaker,
            probe,
            url,
            self.interval if interval is None else check_positive("interval", interval),
            self.timeout if timeout is None else check_positive("timeout", timeout),
            failure_threshold,
        )
        breaker.add_listener(state)
        with self._lock:
            old_task = self._tasks.pop(endpoint, None)
            self._endpoints[endpoint] = state
            loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._restart_task, endpoint, old_task)
        return self.get_health_status(endpoint)

    def _get(self, endpoint: str) -> _Endpoint:
        with self._lock:
            try:
                return self._endpoints[endpoint]
            except KeyError:
                raise KeyError(f"endpoint {endpoint!r} is not registered") from None

    def endpoints(self) -> list[str]:
        with self._lock:
            return list(self._endpoints)

    def breaker(self, endpoint: str) -> CircuitBreaker:
        """The breaker guarding ``endpoint``."""
        return self._get(endpoint).breaker

    def call(self, endpoint: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run a request to ``endpoint`` under its breaker (counted in its status). An
        exception, or a result ``is_failure`` rejects (an HTTP 5xx response by default), is a
        failure; the result is still returned to the caller."""
        return self._get(endpoint).breaker.call(fn, *args, **kwargs)

    async def acall(
        self, endpoint: str, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any
    ) -> Any:
        return await self._get(endpoint).breaker.acall(fn, *args, **kwargs)

    # ------------------------------------------------------------------ status

    def get_health_status(self, endpoint: str) -> HealthStatus:
        ep = self._get(endpoint)
        with ep.lock:
            return HealthStatus(
                endpoint=endpoint,
                state=ep.breaker.state,
                consecutive_failures=ep.consecutive,
                total_requests=ep.requests,
                total_failures=ep.failures,
                failure_rate=ep.failures / ep.requests if ep.requests else 0.0,
                avg_response_time_ms=ep.latency_sum / ep.timed if ep.timed else None,
                last_health_check=ep.last_check,
                last_healthy_at=ep.last_healthy,
                last_probe_ok=ep.last_probe_ok,
                total_probes=ep.probes,
                probe_failures=ep.probe_failures,
            )

    def get_metrics_summary(self, endpoint: str) -> dict[str, Any]:
        """The status plus the breaker's trips and rejections, as a plain dict."""
        summary = self.get_health_status(endpoint).to_dict()
        stats = self._get(endpoint).breaker.stats()
        summary.update(
            trip_count=stats.trip_count,
            total_rejected=stats.rejected,
            retry_after_seconds=stats.retry_after if math.isfinite(stats.retry_after) else None,
            health_url=self._get(endpoint).health_url,
        )
        return summary

    # ------------------------------------------------------------------ probing

    async def health_check(self, endpoint: str) -> bool:
        """Probe ``endpoint`` once now, feed the result to its breaker, return if it passed."""
        ep = self._get(endpoint)
        try:
            if ep.probe is not None:
                result = await ep.timeout.acall(ep.probe)
                ok = result is None or bool(result)
            else:
                ok = await ep.timeout.acall(self._http_probe, ep.health_url)
        except Exception as exc:
            logger.debug("health probe of %s failed: %r", endpoint, exc)
            ok = False
        self._feed(ep, ok)
        return ok

    async def _http_probe(self, url: str) -> bool:
        client = self._client
        if client is not None:
            response = await client.get(url)
        else:
            import httpx

            async with httpx.AsyncClient() as transient:
                response = await transient.get(url)
        return bool(200 <= response.status_code < 300)

    def _feed(self, ep: _Endpoint, ok: bool) -> None:
        with ep.lock:
            ep.probes += 1
            ep.last_check = time.time()
            ep.last_probe_ok = ok
            if ok:
                ep.probe_streak = 0
            else:
                ep.probe_failures += 1
                ep.probe_streak += 1
            streak = ep.probe_streak
        breaker = ep.breaker
        if ok:
            if breaker.state is State.OPEN and breaker.half_open_now():
                logger.info("health probe of %s passed: breaker half-open early", ep.endpoint)
        elif streak >= ep.failure_threshold and breaker.state is State.CLOSED and breaker.trip():
            logger.warning("%d health probes of %s failed: breaker opened", streak, ep.endpoint)

    def _next_delay(self, interval: float) -> float:
        return interval * (1.0 + self.jitter * (2.0 * self._rng.random() - 1.0))

    async def _probe_loop(self, endpoint: str) -> None:
        ep = self._get(endpoint)
        while True:
            await self.health_check(endpoint)
            await self._sleep(self._next_delay(ep.interval))

    # ------------------------------------------------------------------ lifecycle (asyncio)

    @property
    def running(self) -> bool:
        return self._loop is not None

    def _restart_task(self, endpoint: str, old: asyncio.Task[None] | None) -> None:
        if old is not None:
            old.cancel()
        loop = self._loop
        if loop is None:
            return
        with self._lock:
            if endpoint in self._endpoints:
                self._tasks[endpoint] = loop.create_task(
                    self._probe_loop(endpoint), name=f"tripwise-health:{endpoint}"
                )

    async def start(self) -> None:
        """Start probing every endpoint in the running event loop."""
        if self._loop is not None:
            raise RuntimeError("health checker is already running")
        if self.http:
            import httpx

            self._client = httpx.AsyncClient()
        self._loop = asyncio.get_running_loop()
        for endpoint in self.endpoints():
            self._restart_task(endpoint, None)

    async def stop(self) -> None:
        """Cancel and await every probe task and close the HTTP client."""
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
            self._loop = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> HealthChecker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ lifecycle (thread)

    def start_in_thread(self) -> None:
        """Probe in a daemon thread with its own event loop (for sync applications)."""
        if self._thread is not None:
            raise RuntimeError("health checker thread is already running")
        ready = threading.Event()
        failed: list[BaseException] = []

        async def main() -> None:
            self._thread_stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failed.append(exc)
                ready.set()
                return
            ready.set()
            try:
                await self._thread_stop.wait()
            finally:
                await self.stop()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="tripwise-health", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("health checker thread did not start within 10 s")
        if failed:
            self._thread.join()
            self._thread = self._thread_stop = None
            raise failed[0]

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop the probe thread and wait for it to finish."""
        thread, loop, stop = self._thread, self._loop, self._thread_stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"health checker thread did not stop within {timeout} s")
        self._thread = None
        self._thread_stop = None


_checker: HealthChecker | None = None
_checker_lock = threading.Lock()


def get_health_checker() -> HealthChecker:
    """The process-wide health checker (created on first use, breakers in the default
    registry)."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = HealthChecker()
        return _checker
