"""The openai 2.x SDK (on httpx) for tests/integration/llm/test_openai2_httpx.py: the venv holds
openai 3.x (on httpx2), so 2.x lives in a ``pip install --target`` directory of its own, made
once per spec in the user's cache and reused (a warm check costs a ``stat``).

``scripts/test.sh`` runs ``python -m tests.support.openai2`` while it sets up the venv, so the
download happens there, never inside a timed test; the test calls :func:`openai2_dir` too, so a
plain ``pytest`` run works alike. A failed install raises: the test fails, it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SPEC = "openai>=2,<3"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tripwise-tests"


def openai2_dir() -> Path:
    """The directory to put first on ``sys.path`` for openai 2.x (installed if missing)."""
    target = CACHE / "openai2"
    stamp = target / ".tripwise-spec"
    if (target / "openai").is_dir() and stamp.is_file() and stamp.read_text() == SPEC:
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="openai2-", dir=CACHE))
    try:
        pip = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",  # its dependencies (pydantic, httpx, jiter, ...) come from the venv
                "--target",
                str(staging),
                SPEC,
                "distro",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if pip.returncode != 0:
            why = pip.stderr[-3000:]
            raise RuntimeError(f"pip could not install {SPEC!r} into {CACHE}:\n{why}")
        (staging / ".tripwise-spec").write_text(SPEC)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # whole or not at all, even if two runs race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(openai2_dir())
