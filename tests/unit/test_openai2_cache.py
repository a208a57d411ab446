"""The openai 2.x cache of tests/support/openai2.py: installed once per spec, reused warm,
never half-installed, and a failed install is an error (the test that needs it fails, never
skips)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import openai2


class FakePip:
    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(cmd)
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "openai").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, self.returncode, "", "ERROR: no such version")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(openai2, "CACHE", tmp_path)
    return tmp_path


def test_installed_once_per_spec(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pip = FakePip()
    monkeypatch.setattr(openai2.subprocess, "run", pip)
    first = openai2.openai2_dir()
    assert first == cache / "openai2" and (first / "openai").is_dir()
    assert openai2.openai2_dir() == first
    assert len(pip.calls) == 1 and openai2.SPEC in pip.calls[0]
    monkeypatch.setattr(openai2, "SPEC", "openai>=2.5,<3")  # a new spec: installed again
    assert openai2.openai2_dir() == first
    assert len(pip.calls) == 2 and "openai>=2.5,<3" in pip.calls[1]
    assert [p.name for p in cache.iterdir()] == ["openai2"]  # no staging directory left


def test_a_failed_install_raises_and_leaves_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai2.subprocess, "run", FakePip(returncode=1))
    with pytest.raises(RuntimeError, match="no such version"):
        openai2.openai2_dir()
    assert list(cache.iterdir()) == []
