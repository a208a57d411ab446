"""A worker process holding breakers that share state through a RedisStore.

Run as ``python -m tests.support.breaker_worker '<json config>'``; it answers one JSON line on
stdout per JSON command line on stdin. Tests drive several of these to play a fleet.
Config: ``url``, ``namespace``, ``name``, ``members`` (breakers in this process, each with its
own store, i.e. its own fleet member), ``breaker`` (CircuitBreaker options) and ``store``
(RedisStore options).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from typing import Any

from tripwise import CircuitBreaker, CircuitBreakerOpen, consecutive_failures
from tripwise.stores import RedisStore


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom("model down")


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        opts = dict(config.get("breaker", {}))
        failures = opts.pop("consecutive_failures", 3)
        self.stores = [
            RedisStore(config["url"], namespace=config["namespace"], **config.get("store", {}))
            for _ in range(config.get("members", 1))
        ]
        self.transitions: list[list[str]] = [[] for _ in self.stores]
        self.breakers = []
        for i, store in enumerate(self.stores):
            log = self.transitions[i]
            self.breakers.append(
                CircuitBreaker(
                    consecutive_failures(failures),
                    name=config["name"],
                    registry=None,
                    store=store,
                    on_state_change=lambda b, old, new, log=log: log.append(new.value),
                    **opts,
                )
            )

    def _info(self) -> dict[str, Any]:
        return {
            "states": [b.state.value for b in self.breakers],
            "trips": [b.trip_count for b in self.breakers],
        }

    def op_state(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {**self._info(), "transitions": self.transitions}

    def op_fail(self, cmd: dict[str, Any]) -> dict[str, Any]:
        outcomes = []
        for _ in range(cmd.get("n", 1)):
            try:
                self.breakers[0].call(_fail)
            except Boom:
                outcomes.append("failed")
            except CircuitBreakerOpen:
                outcomes.append("rejected")
        return {**self._info(), "outcomes": outcomes}

    def op_call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        outcomes = []
        for breaker in self.breakers:
            try:
                breaker.call(lambda: None)
                outcomes.append("ok")
            except CircuitBreakerOpen:
                outcomes.append("rejected")
        return {**self._info(), "outcomes": outcomes}

    def op_wait_state(self, cmd: dict[str, Any]) -> dict[str, Any]:
        start = time.monotonic()
        deadline = start + cmd.get("timeout", 5.0)
        while time.monotonic() < deadline:
            if all(b.state.value == cmd["state"] for b in self.breakers):
                return {**self._info(), "ok": True, "waited": time.monotonic() - start}
            time.sleep(0.001)
        return {**self._info(), "ok": False, "waited": time.monotonic() - start}

    def op_reset(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.breakers[0].reset()
        return self._info()

    def op_control(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """A manual action on member 0: force_open, disable, reset or half_open_now."""
        getattr(self.breakers[0], cmd["action"])(by=cmd.get("by"), reason=cmd.get("reason"))
        return self._info()

    def op_modes(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {**self._info(), "modes": [b.mode.value for b in self.breakers]}

    def _at(self, cmd: dict[str, Any], target: Any, threads: int) -> list[Any]:
        """Run ``target(i)`` in ``threads`` threads, all starting at wall time ``cmd['at']``."""
        results: list[Any] = [None] * threads

        def run(i: int) -> None:
            time.sleep(max(0.0, cmd["at"] - time.time()))
            results[i] = target(i)

        pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return results

    def op_probe_race(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Every thread tries one call (held ``hold`` s, so probes overlap) at the same time."""
        hold = cmd.get("hold", 0.3)

        def attempt(i: int) -> bool:
            breaker = self.breakers[i % len(self.breakers)]
            try:
                breaker.call(time.sleep, hold)
                return True
            except CircuitBreakerOpen:
                return False

        admitted = self._at(cmd, attempt, cmd.get("threads", 3))
        return {**self._info(), "admitted": sum(admitted)}

    def op_cycle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """One failure burst and recovery: every thread fails calls from wall time ``at`` until
        its member rejects; then, from wall time ``probe_at``, every thread tries one healthy
        call held ``hold`` s. Answers how many calls were admitted as probes and how many
        calls crashed (raised anything but the model's error or CircuitBreakerOpen)."""
        threads = cmd.get("threads", 4)
        hold = cmd.get("hold", 0.08)
        crashed = [0] * threads

        def hammer(i: int) -> None:
            breaker = self.breakers[i % len(self.breakers)]
            for _ in range(200):
                try:
                    breaker.call(_fail)
                except Boom:
                    continue
                except CircuitBreakerOpen:
                    return
                except Exception:
                    crashed[i] += 1
                    return

        def probe(i: int) -> bool:
            breaker = self.breakers[i % len(self.breakers)]
            try:
                breaker.call(time.sleep, hold)
                return True
            except CircuitBreakerOpen:
                return False
            except Exception:
                crashed[i] += 1
                return False

        self._at(cmd, hammer, threads)
        trips = [b.trip_count for b in self.breakers]
        # A worker that reaches the probe instant late (a loaded machine) does not probe: the
        # others' probes may have closed the breaker already, and its calls would not be probes.
        late = time.time() > cmd["probe_at"] or max(b.retry_after() for b in self.breakers) > (
            cmd["probe_at"] - time.time()
        )
        admitted = [] if late else self._at({"at": cmd["probe_at"]}, probe, threads)
        return {**self._info(), "burst_trips": trips, "admitted": sum(admitted),
                "late": late, "crashed": sum(crashed)}  # fmt: skip

    def op_heal(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Healthy calls on every member until all are CLOSED (at most ``timeout`` s)."""
        deadline = time.monotonic() + cmd.get("timeout", 5.0)
        while time.monotonic() < deadline:
            if all(b.state.value == "closed" for b in self.breakers):
                return {**self._info(), "ok": True}
            for breaker in self.breakers:
                with contextlib.suppress(CircuitBreakerOpen):
                    breaker.call(lambda: None)
            time.sleep(0.005)
        return {**self._info(), "ok": False}

    def op_burst(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Every thread fails calls on its member until the member rejects (one burst)."""

        def hammer(i: int) -> int:
            breaker = self.breakers[i % len(self.breakers)]
            for n in range(200):
                try:
                    breaker.call(_fail)
                except Boom:
                    continue
                except CircuitBreakerOpen:
                    return n
            return -1

        self._at(cmd, hammer, cmd.get("threads", 8))
        return self._info()


def main() -> None:
    worker = Worker(json.loads(sys.argv[1]))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            reply = getattr(worker, "op_" + cmd["op"])(cmd)
        except Exception as exc:  # report, keep serving: the test decides
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    for store in worker.stores:
        store.close()


if __name__ == "__main__":
    main()
