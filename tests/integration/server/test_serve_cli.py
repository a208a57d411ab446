"""``tripwise serve`` as a new user meets it: every mistake is a one-line error with exit
code 2 (never a traceback), Ctrl-C is a clean exit, help works without the server extra,
admin-key rotation is explicit, and the shutdown grace period is honoured to the fraction."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server_process import SRC, ServerProcess, free_port

ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
ENV.pop("TRIPWISE_ADMIN_KEY", None)


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tripwise.server", *args],
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "99999"], "port must be 1..65535"),
        (["--port", "-1"], "port must be 1..65535"),
        (["--db", "sqlite:///:memory:"], "in-memory SQLite"),
        (["--db", "nonsense://x"], "unsupported database URL"),
        (["--log-level", "FOO"], "log_level must be one of"),
        (["--admin-key", "x"], "at least 16 characters"),
        (["--db", "sqlite:////proc/no/such/dir/t.db"], "cannot create the SQLite database"),
        (["--db", "postgresql://postgres@127.0.0.1:1/nowhere"], "cannot open the database"),
    ],
)
def test_bad_settings_are_one_line_errors(args: list[str], needle: str, tmp_path: Path) -> None:
    port = [] if "--port" in args else ["--port", str(free_port())]
    r = _serve(*args, *port, env={"TRIPWISE_DB": f"sqlite:///{tmp_path / 'x.db'}"})
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


_BLOCK_SERVER_EXTRA = (
    "import sys\n"
    "for name in ('fastapi', 'uvicorn', 'sqlalchemy', 'starlette'):\n"
    "    sys.modules[name] = None\n"
)


def test_help_and_missing_extra_without_the_server_extra() -> None:
    help_run = subprocess.run(
        [
            sys.executable,
            "-c",
            _BLOCK_SERVER_EXTRA + "from tripwise.cli import main\n"
            "sys.exit(main(['serve', '--help']))",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "--db" in help_run.stdout and "--rotate-admin-key" in help_run.stdout
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _BLOCK_SERVER_EXTRA + "import runpy\n"
            "runpy.run_module('tripwise.server', run_name='__main__')",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert "server extra is not installed" in run.stderr and "Traceback" not in run.stderr
    evaluator = subprocess.run(
        [sys.executable, "-c", _BLOCK_SERVER_EXTRA + "import tripwise.server.evaluator.breaker"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert evaluator.returncode == 0, evaluator.stderr


def test_ctrl_c_is_a_clean_exit(tmp_path: Path) -> None:
    proc = ServerProcess(f"sqlite:///{tmp_path / 't.db'}", "eb_admin_" + secrets.token_hex(16))
    proc.start(tmp_path / "server.log")
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(20) == 0
    proc.proc = None
    assert "Traceback" not in proc.log()


def test_a_taken_port_is_one_line_naming_the_address(tmp_path: Path) -> None:
    db = tmp_path / "taken.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _serve("--port", str(port), "--db", f"sqlite:///{db}")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines() == [
        f"tripwise serve: cannot listen on 127.0.0.1:{port}: "
        "the port is already in use (is another server running there?)"
    ], r.stderr
    assert r.stdout == ""  # refused before the database: no admin key was made and shown
    assert not db.exists()


def test_admin_key_rotation_is_explicit(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'rot.db'}"
    old, new = "eb_admin_" + secrets.token_hex(16), "eb_admin_" + secrets.token_hex(16)
    first = ServerProcess(db, old)
    first.start(tmp_path / "1.log")
    first.stop()
    refused = _serve("--db", db, "--port", str(free_port()), env={"TRIPWISE_ADMIN_KEY": new})
    assert refused.returncode == 2 and "--rotate-admin-key" in refused.stderr, refused.stderr
    rotated = ServerProcess(db, new, env={"TRIPWISE_ROTATE_ADMIN_KEY": "true"})
    rotated.start(tmp_path / "2.log")
    try:

        def status(key: str) -> int:
            return httpx.get(
                rotated.url + "/v1/projects", headers={"Authorization": f"Bearer {key}"}
            ).status_code

        assert status(new) == 200
        assert status(old) == 401
    finally:
        rotated.stop()


def test_a_request_still_running_at_the_end_of_the_grace_period_gets_503(tmp_path: Path) -> None:
    proc = ServerProcess(
        f"sqlite:///{tmp_path / 'g.db'}",
        "eb_admin_" + secrets.token_hex(16),
        env={"TRIPWISE_SHUTDOWN_GRACE_S": "0.5"},
    )
    proc.start(tmp_path / "server.log")
    assert proc.proc is not None
    with socket.create_connection(("127.0.0.1", proc.port)) as sock:
        sock.sendall(
            b"POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {proc.admin_key}\r\n".encode()
            + b'Content-Length: 100\r\n\r\n{"name"'
        )  # the body never completes: the request is still running at shutdown
        time.sleep(0.3)
        proc.proc.send_signal(signal.SIGTERM)
        sock.settimeout(10)
        answer = sock.recv(4096)
        # a 0.5 s grace, not "no limit" (uvicorn re-raises SIGTERM once it has shut down)
        assert proc.proc.wait(20) in (0, -signal.SIGTERM)
    proc.proc = None
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert "Traceback" not in proc.log() and "CancelledError" not in proc.log()
