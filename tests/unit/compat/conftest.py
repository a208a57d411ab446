"""Classic breakers join the process-wide registry: each test leaves it as it found it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tripwise import default_registry


@pytest.fixture(autouse=True)
def _restore_default_registry() -> Iterator[None]:
    before = default_registry.all()
    yield
    for name, breaker in default_registry.all().items():
        if before.get(name) is not breaker:
            default_registry.remove(name)
