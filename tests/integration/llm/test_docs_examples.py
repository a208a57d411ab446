"""Every Python example of docs/http.md and docs/llm.md runs as written, with its localhost
URLs pointed at fake OpenAI/Ollama servers on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.fake_llm import FakeLLMServer

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[3] / "docs"
BLOCKS = [
    (name, i, code)
    for name in ("http.md", "llm.md")
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S))
]


@pytest.mark.parametrize(("doc", "index", "code"), BLOCKS, ids=[f"{d}-{i}" for d, i, _ in BLOCKS])
def test_example_runs(
    doc: str, index: int, code: str, server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    code = (
        code.replace("http://localhost:8000", server.url)
        .replace("http://localhost:11434", server2.url)
        .replace("http://localhost:11435", server.url)
    )
    exec(compile(code, f"{doc}[{index}]", "exec"), {})
