"""The code examples of docs/core.md's Conditions section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "core.md"


def _examples() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Conditions\n") : text.index("## Quality signals\n")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_section_has_examples() -> None:
    assert len(_examples()) >= 4


@pytest.mark.parametrize("code", _examples(), ids=lambda code: code.splitlines()[-1][:40])
def test_example_runs(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {})
