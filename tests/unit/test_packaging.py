"""The package metadata says what the project tests: the Python versions scripts/test.sh runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tested_versions() -> list[str]:
    script = (ROOT / "scripts" / "test.sh").read_text()
    match = re.search(r'^SUPPORTED_PYTHONS="\$\{SUPPORTED_PYTHONS-([0-9. ]+)\}"', script, re.M)
    assert match, "scripts/test.sh no longer sets its default SUPPORTED_PYTHONS"
    return match.group(1).split()


def test_classifiers_and_requires_python_match_the_tested_versions() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    tested = _tested_versions()
    assert classified == tested
    requires = re.search(r'^requires-python = ">=(3\.\d+)"', pyproject, re.M)
    assert requires and requires.group(1) == tested[0]
