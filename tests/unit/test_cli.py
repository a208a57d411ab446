"""`tripwise demo` is the README's main command: it must show the whole story."""

from __future__ import annotations

import io
import subprocess
import sys

from tripwise.cli import main
from tripwise.demo import run_demo


def test_demo_shows_trip_fallback_and_recovery() -> None:
    out = io.StringIO()
    run_demo(out)
    text = out.getvalue()
    assert "closed -> open" in text
    assert "open -> half_open" in text
    assert "half_open -> closed" in text
    assert "final state closed" in text


def test_cli_demo_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tripwise", "demo"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "closed -> open" in proc.stdout
    # the breakers' WARNING logs no longer interleave duplicate lines with the scenes
    assert "opened (trip" not in proc.stderr, proc.stderr


def test_bad_arguments_are_one_line_errors_with_exit_code_2() -> None:
    for argv in (["demo", "--bogus"], ["bogus"]):
        proc = subprocess.run(
            [sys.executable, "-m", "tripwise", *argv], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("tripwise: error:"), proc.stderr


def test_cli_without_command_prints_help() -> None:
    assert main([]) == 2
