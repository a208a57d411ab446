"""LLM clients whose output checks are breaker outcomes, and the LLM service.

``pip install 'tripwise[llm]'``::

    from tripwise.llm import OpenAIClient

    client = OpenAIClient("http://localhost:8000/v1", model="my-model")
    answer = client.complete("What is 2+2?")   # empty / truncated / refused answers raise
"""

from tripwise.llm.checks import (
    CHECKS,
    DEFAULT_CHECKS,
    BodyCheck,
    CheckFailure,
    CheckReport,
    CheckSuite,
    OutputCheck,
    StreamBodyCheck,
    StreamChecker,
    body_check,
    build_checks,
    stream_check,
)
from tripwise.llm.client import (
    ClientStats,
    LLMClient,
    OllamaClient,
    OpenAIClient,
)
from tripwise.llm.errors import (
    AllAttemptsFailed,
    CircuitBreakerError,
    LLMError,
    LLMHTTPError,
    LLMTimeout,
    LLMTransportError,
    OutputCheckFailed,
    counts_as_backend_failure,
)
from tripwise.llm.response import Attempt, LLMResponse, StreamEvent, ToolCall
from tripwise.llm.service import LLMService
from tripwise.llm.streams import AsyncChatStream, ChatStream
from tripwise.llm.timeouts import Timeouts

__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "AllAttemptsFailed",
    "AsyncChatStream",
    "BodyCheck",
    "Attempt",
    "ChatStream",
    "CheckFailure",
    "CheckReport",
    "CheckSuite",
    "CircuitBreakerError",
    "ClientStats",
    "LLMClient",
    "LLMError",
    "LLMHTTPError",
    "LLMResponse",
    "LLMService",
    "LLMTimeout",
    "LLMTransportError",
    "OllamaClient",
    "OpenAIClient",
    "OutputCheck",
    "OutputCheckFailed",
    "StreamBodyCheck",
    "StreamChecker",
    "StreamEvent",
    "Timeouts",
    "ToolCall",
    "body_check",
    "build_checks",
    "counts_as_backend_failure",
    "stream_check",
]
