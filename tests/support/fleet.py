"""Drive several breaker_worker processes as one fleet (see breaker_worker.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, config: dict[str, Any]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.breaker_worker", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def ready(self) -> None:
        assert self._read() == {"ready": True}

    def send(self, op: str, **args: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.process.wait()}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"worker failed: {reply['error']}")
        return reply

    def ask(self, op: str, **args: Any) -> dict[str, Any]:
        self.send(op, **args)
        return self._read()

    def result(self) -> dict[str, Any]:
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("quit")
                self.process.wait(timeout=5)
            except (OSError, ValueError, Exception):
                self.process.kill()
                self.process.wait()


class Fleet:
    """``n`` worker processes sharing breaker ``name`` in ``namespace``."""

    def __init__(self, n: int, config: dict[str, Any]) -> None:
        self.workers = [WorkerProcess(config) for _ in range(n)]
        for w in self.workers:
            w.ready()

    def ask_all(self, op: str, **args: Any) -> list[dict[str, Any]]:
        for w in self.workers:
            w.send(op, **args)
        return [w.result() for w in self.workers]

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
