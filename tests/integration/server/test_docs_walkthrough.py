"""docs/server.md's walkthrough runs as written (the curl steps and the SDK steps), against a
real server (on a free port instead of 8080)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.server_process import ServerProcess

DOC = Path(__file__).resolve().parents[3] / "docs" / "server.md"


def _block(after: str, lang: str) -> str:
    text = DOC.read_text()
    start = text.index(after)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert match is not None
    return match.group(1)


def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    key = "eb_admin_walkthrough_0123456789"
    assert key in _block("## Walkthrough", "bash")
    server = ServerProcess(f"sqlite:///{tmp_path / 'tripwise.db'}", key)
    server.start(tmp_path / "server.log")
    try:
        env = {
            **os.environ,
            "TRIPWISE_ADMIN_KEY": key,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        here = f"127.0.0.1:{server.port}"
        curl = _block("### With curl", "bash").replace("127.0.0.1:8080", here)
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", curl],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert '"state":"open"' in run.stdout, run.stdout
        assert 'data: {"breaker":"checkout-latency","state":"open","allow_rate":0.0}' in run.stdout
        sdk = _block("### With the SDK", "python").replace("127.0.0.1:8080", here)
        run = subprocess.run(
            [sys.executable, "-c", sdk], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        assert "BreakerStatus(name='checkout-latency', state='open', allow_rate=0.0)" in run.stdout
    finally:
        server.stop()
