from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_llm import FakeLLMServer


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def server2() -> Iterator[FakeLLMServer]:
    with FakeLLMServer("local-model") as s:
        yield s
