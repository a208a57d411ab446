"""Shared fixtures of the core engine tests: a fake clock and a clean default registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tripwise import FakeClock, default_registry


@pytest.fixture
def clock() -> FakeClock:
    """A manually advanced clock; every breaker under test reads time only through it."""
    return FakeClock(1000.0)


@pytest.fixture(autouse=True)
def _restore_default_registry() -> Iterator[None]:
    """Remove every breaker a test registered in the process-wide registry."""
    before = default_registry.all()
    yield
    for name, breaker in default_registry.all().items():
        if before.get(name) is not breaker:
            default_registry.remove(name)
