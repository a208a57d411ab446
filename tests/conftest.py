"""Fixtures for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tripwise.core import signals


@pytest.fixture(autouse=True)
def _inline_quality_calls_again() -> Iterator[None]:
    """A report outside any guarded call turns inline quality calls off for the process
    (signals.scope_everything); each test starts with them on, as a fresh process does."""
    yield
    signals.inline_off = False
