"""The official openai SDK 2.x (on httpx, not httpx2) through wrap_openai, in a subprocess
whose sys.path puts openai 2.x first (installed once from PyPI into a cache directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_llm import FakeLLMServer, Fault

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tripwise-tests"
SPEC = "openai>=2,<3"


def openai2_dir() -> Path:
    target = CACHE / "openai2"
    if not (target / "openai").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                SPEC,
                "distro",
            ],
            check=True,
            timeout=300,
        )
    return target


def test_openai_2x_on_httpx(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("status", status=500)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(openai2_dir()), str(ROOT), str(ROOT / "src")])
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.openai2_client", server.base_url, server2.base_url],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["openai"].startswith("2.")
    assert out["on_httpx"] is True and out["max_retries"] == 0
    assert out["fallback_model"] == "local-model"
    assert out["open_status"] == 503 and out["open_code"] == "circuit_breaker_open"
    assert out["should_retry"] == "false"
