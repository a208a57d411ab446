"""What an LLM call returns: the answer with its metadata, stream events, attempt records."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an answer; ``arguments`` is the raw JSON text the model produced."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One attempt of a call: which backend, the outcome (``ok``, ``open``, ``transport``,
    ``timeout``, ``http``, ``quality``), a detail (status, check name, error) and its time."""

    attempt: int
    backend: str
    outcome: str
    detail: str = ""
    ms: float = 0.0


_KEYS = (
    "content",
    "model",
    "usage",
    "response_time_ms",
    "fallback_used",
    "attempt",
    "backend",
    "finish_reason",
    "quality",
    "tool_calls",
    "attempts",
)


@dataclass
class LLMResponse(Mapping[str, Any]):
    """An answer. Attributes, and also a read-only mapping (``result["content"]``) of the
    seed's metadata (content, model, usage, response_time_ms, fallback_used, attempt) plus
    backend, finish_reason, quality, tool_calls and attempts."""

    content: str
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: tuple[float, ...] | None = None
    backend: str = ""
    response_time_ms: float = 0.0
    quality: float | None = None
    fallback_used: bool = False
    attempt: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    raw: Any = None
    # what the request asked for, read by the checks (JSON schema, tool schemas)
    response_schema: dict[str, Any] | None = field(default=None, repr=False)
    wants_json: bool = field(default=False, repr=False)
    tool_schemas: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def __hash__(self) -> int:  # Mapping sets __hash__ = None through __eq__; keep identity
        return id(self)

    @property
    def completion_tokens(self) -> int:
        n = self.usage.get("completion_tokens")
        return int(n) if isinstance(n, int) else len(self.content.split())

    @property
    def mean_logprob(self) -> float | None:
        lp = self.logprobs
        return math.fsum(lp) / len(lp) if lp else None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _KEYS}
        d["tool_calls"] = [vars(t).copy() for t in self.tool_calls]
        d["attempts"] = [vars(a).copy() for a in self.attempts]
        return d


@dataclass(frozen=True)
class StreamEvent:
    """A piece of a streamed answer: ``delta`` is the new text (may be empty for chunks that
    carry only tool-call or finish data); ``raw`` is the parsed chunk."""

    delta: str
    raw: Any = None
