"""The official openai SDK 2.x (on httpx, not httpx2) through wrap_openai, in a subprocess
whose sys.path puts openai 2.x first.

openai 2.x comes from PyPI once into a cache directory (tests/support/openai2.py);
scripts/test.sh (and so CI) installs it while it sets up the venv, before pytest starts. This
test never skips: where the SDK cannot be installed it fails with pip's error, so a CI run
always exercises the 2.x path or says why it could not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tests.support.openai2 import openai2_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


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
