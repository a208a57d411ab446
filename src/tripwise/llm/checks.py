"""Output checks: a 200 answer that is empty, truncated, refused, malformed or looping is a
failure of its backend, not a success.

Each check scores an :class:`~tripwise.llm.LLMResponse` in [0, 1] with the scorers of
:mod:`tripwise.quality`; a score below the check's ``threshold`` fails it. On a stream,
:meth:`OutputCheck.partial` looks at the text so far and may fail it early (a refusal is
visible in the first sentence). Build them by name with :func:`build_checks`::

    build_checks(["non_empty", "finish_reason", ("min_tokens", {"n": 5}), "json"])

Names: ``non_empty``, ``finish_reason``, ``refusal``, ``json`` (alias ``json_schema``),
``tool_args``, ``min_tokens``, ``repetition``, ``logprob``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tripwise.llm.response import LLMResponse
from tripwise.quality.text import (
    Completion,
    JsonScorer,
    RefusalScorer,
    repetition_score,
)


def _completion(r: LLMResponse) -> Completion:
    return Completion(r.content, r.finish_reason, r.logprobs)


@dataclass(frozen=True)
class CheckFailure:
    """Which check failed, why, and its score."""

    check: str
    reason: str
    score: float = 0.0


class OutputCheck:
    """Base class: ``score(response)`` in [0, 1]; below ``threshold`` the check fails."""

    name = "check"
    threshold = 0.5

    def score(self, response: LLMResponse) -> float:
        raise NotImplementedError

    def reason(self, response: LLMResponse, score: float) -> str:
        return f"score {score:.3f} < {self.threshold:g}"

    def partial(self, text: str) -> str | None:
        """On a stream: a reason when the text so far already fails, else None."""
        return None

    partial_from = 16
    """Characters of streamed text before :meth:`partial` is first asked."""

    def partial_next(self, chars: int) -> int | None:
        """After asking :meth:`partial` at ``chars`` characters, when to ask again (None:
        never on this stream). The default: every 16 more characters."""
        return chars + 16

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NonEmpty(OutputCheck):
    """The answer has text or tool calls."""

    name = "non_empty"

    def score(self, response: LLMResponse) -> float:
        return 1.0 if response.content.strip() or response.tool_calls else 0.0

    def reason(self, response: LLMResponse, score: float) -> str:
        return "empty answer"


class FinishReason(OutputCheck):
    """Generation did not stop for a bad reason (default: ``length``, ``content_filter``)."""

    name = "finish_reason"

    def __init__(self, bad: Iterable[str] = ("length", "max_tokens", "content_filter")) -> None:
        if isinstance(bad, str):
            raise TypeError("bad must be a list of finish reasons, not a single string")
        self.bad = frozenset(bad)
        if not self.bad or not all(isinstance(b, str) for b in self.bad):
            raise ValueError(f"bad must be a non-empty list of strings, got {bad!r}")

    def score(self, response: LLMResponse) -> float:
        return 0.0 if response.finish_reason in self.bad else 1.0

    def reason(self, response: LLMResponse, score: float) -> str:
        return f"finish_reason {response.finish_reason!r}"

    def __repr__(self) -> str:
        return f"FinishReason(bad={sorted(self.bad)!r})"


class Refusal(OutputCheck):
    """The answer does not open with a refusal (``tripwise.quality.RefusalScorer``)."""

    name = "refusal"

    def __init__(self, phrases: Iterable[str] | None = None, *, within: int = 300) -> None:
        self.scorer = RefusalScorer(phrases, within=within)
        self.within = within

    def score(self, response: LLMResponse) -> float:
        return self.scorer(_completion(response))

    def reason(self, response: LLMResponse, score: float) -> str:
        return f"refusal: {response.content[:80]!r}"

    def partial(self, text: str) -> str | None:
        if self.scorer(text[: 2 * self.within]) < self.threshold:
            return f"refusal: {text[:80]!r}"
        return None

    def partial_next(self, chars: int) -> int | None:
        return chars + 16 if chars <= self.within else None  # refusals come first


class ValidJson(OutputCheck):
    """The content is JSON (matching ``schema``). Without a schema it applies only when the
    request asked for JSON (``response_format``) and then uses the request's schema."""

    name = "json"

    def __init__(self, schema: dict[str, Any] | None = None, *, always: bool = False) -> None:
        self.schema = schema
        self.always = bool(always) or schema is not None
        self.scorer = JsonScorer(schema)
        self._by_schema: dict[str, JsonScorer] = {}

    def score(self, response: LLMResponse) -> float:
        if self.schema is not None:
            return self.scorer(_completion(response))
        if response.response_schema is not None:
            key = json.dumps(response.response_schema, sort_keys=True)
            scorer = self._by_schema.get(key)
            if scorer is None:
                scorer = self._by_schema.setdefault(key, JsonScorer(response.response_schema))
            return scorer(_completion(response))
        if self.always or response.wants_json:
            return self.scorer(_completion(response))
        return 1.0

    def reason(self, response: LLMResponse, score: float) -> str:
        what = "JSON matching the schema" if (self.schema or response.response_schema) else "JSON"
        return f"content is not {what}: {response.content[:80]!r}"

    def __repr__(self) -> str:
        return f"ValidJson(schema={'...' if self.schema else None}, always={self.always})"


class ToolArgs(OutputCheck):
    """Every tool call's arguments are a JSON object matching its function's parameter schema
    (from ``schemas`` by function name, else from the request's ``tools``)."""

    name = "tool_args"

    def __init__(self, schemas: dict[str, dict[str, Any]] | None = None) -> None:
        if schemas is not None and not isinstance(schemas, dict):
            raise TypeError(f"schemas must map function names to JSON Schemas, got {schemas!r}")
        self.schemas = dict(schemas or {})
        self._validators: dict[str, Any] = {}
        for fn, schema in self.schemas.items():
            self._validator(fn, schema)  # a malformed schema is an error now

    def _validator(self, fn: str, schema: Any) -> Any:
        key = f"{fn}:{json.dumps(schema, sort_keys=True)}"
        v = self._validators.get(key)
        if v is None:
            try:
                import jsonschema
            except ImportError:
                raise ImportError(
                    "tool_args needs jsonschema: pip install 'tripwise[llm]'"
                ) from None
            if not isinstance(schema, dict):
                raise TypeError(f"schema of tool {fn!r} must be a dict, got {schema!r}")
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"malformed JSON Schema for tool {fn!r}: {exc.message}") from None
            v = self._validators.setdefault(key, cls(schema))
        return v

    def _problem(self, response: LLMResponse) -> str | None:
        for call in response.tool_calls:
            try:
                args = json.loads(call.arguments or "{}")
            except ValueError:
                return f"arguments of {call.name!r} are not JSON: {call.arguments[:80]!r}"
            if not isinstance(args, dict):
                return f"arguments of {call.name!r} are not a JSON object"
            schema = self.schemas.get(call.name, response.tool_schemas.get(call.name))
            if schema is not None:
                errors = sorted(self._validator(call.name, schema).iter_errors(args), key=str)
                if errors:
                    return f"arguments of {call.name!r} break its schema: {errors[0].message}"
        return None

    def score(self, response: LLMResponse) -> float:
        return 0.0 if self._problem(response) else 1.0

    def reason(self, response: LLMResponse, score: float) -> str:
        return self._problem(response) or "invalid tool arguments"


class MinTokens(OutputCheck):
    """At least ``n`` completion tokens (from ``usage``, else words)."""

    name = "min_tokens"

    def __init__(self, n: int = 1) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"min_tokens n must be an integer >= 1, got {n!r}")
        self.n = n
        self.threshold = 1.0

    def score(self, response: LLMResponse) -> float:
        if response.tool_calls and not response.content:
            return 1.0
        return min(1.0, response.completion_tokens / self.n)

    def reason(self, response: LLMResponse, score: float) -> str:
        return f"{response.completion_tokens} completion tokens < {self.n}"

    def __repr__(self) -> str:
        return f"MinTokens({self.n})"


class Repetition(OutputCheck):
    """No repetition loop: share of distinct word ``n``-grams at least ``min_score``."""

    name = "repetition"

    def __init__(self, n: int = 3, min_score: float = 0.3, *, min_words: int = 30) -> None:
        repetition_score("", n=n)
        if not isinstance(min_score, (int, float)) or not 0.0 < min_score <= 1.0:
            raise ValueError(f"min_score must be in (0, 1], got {min_score!r}")
        self.n = n
        self.threshold = float(min_score)
        self.min_words = min_words
        self.partial_from = 4 * min_words

    def score(self, response: LLMResponse) -> float:
        if len(response.content.split()) < self.min_words:
            return 1.0
        return repetition_score(response.content, n=self.n)

    def partial(self, text: str) -> str | None:
        if len(text.split()) < self.min_words:
            return None
        s = repetition_score(text, n=self.n)
        return f"repetition loop (distinct {self.n}-grams {s:.2f})" if s < self.threshold else None

    def partial_next(self, chars: int) -> int | None:
        return 2 * chars  # re-scored at doubling lengths: linear work over the stream

    def reason(self, response: LLMResponse, score: float) -> str:
        return f"repetition loop (distinct {self.n}-grams {score:.2f} < {self.threshold:g})"

    def __repr__(self) -> str:
        return f"Repetition(n={self.n}, min_score={self.threshold:g})"


class MeanLogprob(OutputCheck):
    """Mean token log-probability at least ``min_logprob`` (answers without logprobs pass)."""

    name = "logprob"

    def __init__(self, min_logprob: float = -1.5) -> None:
        if isinstance(min_logprob, bool) or not isinstance(min_logprob, (int, float)):
            raise TypeError(f"min_logprob must be a number <= 0, got {min_logprob!r}")
        if not (math.isfinite(min_logprob) and min_logprob <= 0):
            raise ValueError(f"min_logprob must be a finite number <= 0, got {min_logprob!r}")
        self.min_logprob = float(min_logprob)
        self.threshold = math.exp(self.min_logprob)

    def score(self, response: LLMResponse) -> float:
        mean = response.mean_logprob
        return 1.0 if mean is None else min(1.0, math.exp(mean))

    def reason(self, response: LLMResponse, score: float) -> str:
        return f"mean logprob {response.mean_logprob:.3f} < {self.min_logprob:g}"

    def __repr__(self) -> str:
        return f"MeanLogprob({self.min_logprob:g})"


class _Custom(OutputCheck):
    def __init__(self, fn: Callable[[LLMResponse], Any], threshold: float = 0.5) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "custom")
        self.threshold = threshold

    def score(self, response: LLMResponse) -> float:
        raw = self.fn(response)
        return float(raw)

    def __repr__(self) -> str:
        return f"check({self.name})"


CHECKS: dict[str, Callable[..., OutputCheck]] = {
    "non_empty": NonEmpty,
    "finish_reason": FinishReason,
    "refusal": Refusal,
    "json": ValidJson,
    "json_schema": ValidJson,
    "tool_args": ToolArgs,
    "min_tokens": MinTokens,
    "repetition": Repetition,
    "logprob": MeanLogprob,
}

DEFAULT_CHECKS: tuple[str, ...] = ("non_empty", "finish_reason", "refusal", "json", "tool_args")
"""What a client checks unless told otherwise (``json`` and ``tool_args`` only act when the
request asked for JSON or tools)."""


def build_check(spec: Any) -> OutputCheck:
    if isinstance(spec, OutputCheck):
        return spec
    kwargs: dict[str, Any] = {}
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict):
        spec, kwargs = spec
    if isinstance(spec, str):
        try:
            factory = CHECKS[spec]
        except KeyError:
            raise ValueError(f"unknown check {spec!r}; known checks: {sorted(CHECKS)}") from None
        if spec == "json_schema" and "schema" not in kwargs:
            raise ValueError("check 'json_schema' needs a schema: ('json_schema', {'schema': ...})")
        try:
            return factory(**kwargs)
        except TypeError as exc:
            raise TypeError(f"bad arguments for check {spec!r}: {exc}") from None
    if callable(spec):
        return _Custom(spec)
    raise TypeError(
        "a check is a name, a (name, kwargs) pair, an OutputCheck or a callable "
        f"(response) -> score; got {spec!r}"
    )


@dataclass
class CheckReport:
    """The verdict of all checks on one answer: ``quality`` is the lowest score."""

    passed: bool
    quality: float
    failures: list[CheckFailure] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


class CheckSuite:
    """Checks run together; ``run(response)`` for a whole answer, ``stream_checker()`` for a
    stream in progress."""

    def __init__(self, checks: Sequence[OutputCheck]) -> None:
        self.checks = tuple(checks)

    def __bool__(self) -> bool:
        return bool(self.checks)

    def run(self, response: LLMResponse) -> CheckReport:
        scores: dict[str, float] = {}
        failures: list[CheckFailure] = []
        for check in self.checks:
            s = min(1.0, max(0.0, float(check.score(response))))
            scores[check.name] = s
            if s < check.threshold:
                failures.append(CheckFailure(check.name, check.reason(response, s), s))
        quality = min(scores.values(), default=1.0)
        return CheckReport(not failures, quality, failures, scores)

    def stream_checker(self) -> StreamChecker:
        return StreamChecker(self)

    def __repr__(self) -> str:
        return f"CheckSuite({list(self.checks)!r})"


class StreamChecker:
    """Incremental checks of one stream: ``feed(delta)`` returns a failure as soon as the text
    so far fails a check; ``finish(response)`` runs the full checks on the whole answer."""

    def __init__(self, suite: CheckSuite) -> None:
        self.suite = suite
        self._parts: list[str] = []
        partials = [c for c in suite.checks if type(c).partial is not OutputCheck.partial]
        # per stream: when each incremental check is due next (in characters of text)
        self._due: list[tuple[OutputCheck, int | None]] = [(c, c.partial_from) for c in partials]
        self._chars = 0
        self._next = min((d for _, d in self._due if d is not None), default=None)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, delta: str) -> CheckFailure | None:
        if not delta:
            return None
        self._parts.append(delta)
        self._chars += len(delta)
        if self._next is None or self._chars < self._next:
            return None
        chars, text = self._chars, self.text
        failure = None
        due: list[tuple[OutputCheck, int | None]] = []
        for check, at in self._due:
            if at is not None and chars >= at and failure is None:
                reason = check.partial(text)
                if reason is not None:
                    failure = CheckFailure(check.name, reason, 0.0)
                at = check.partial_next(chars)
            due.append((check, at))
        self._due = due
        self._next = min((d for _, d in due if d is not None), default=None)
        return failure

    def finish(self, response: LLMResponse) -> CheckReport:
        return self.suite.run(response)


def build_checks(spec: Any = None) -> CheckSuite:
    """A :class:`CheckSuite` from names, (name, kwargs) pairs, checks or callables.
    ``None`` gives :data:`DEFAULT_CHECKS`; ``()`` or ``False`` none."""
    if isinstance(spec, CheckSuite):
        return spec
    if spec is None:
        spec = DEFAULT_CHECKS
    if spec is False:
        spec = ()
    if isinstance(spec, (str, OutputCheck)) or (
        isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict)
    ):
        spec = [spec]
    try:
        items = list(spec)
    except TypeError:
        raise TypeError(f"checks must be a list of checks, got {spec!r}") from None
    return CheckSuite([build_check(s) for s in items])


class BodyCheck:
    """Output checks as a body check of a :class:`tripwise.http.BreakerTransport`: parses a
    JSON chat answer (``api="openai"`` or ``"ollama"``) and scores it 0.0 when a check fails,
    else its quality, so a bad 200 counts as a failure of the upstream's breaker and moves the
    request to the fallback. ``last_report`` keeps the verdict of the latest answer."""

    name = "llm_output"

    def __init__(self, checks: Any = None, *, api: str = "openai") -> None:
        from tripwise.llm.wire import OllamaWire, OpenAIWire

        if api not in ("openai", "ollama"):
            raise ValueError(f"api must be 'openai' or 'ollama', got {api!r}")
        self.suite = build_checks(checks)
        self.wire = OpenAIWire("upstream") if api == "openai" else OllamaWire("upstream")
        self.last_report: CheckReport | None = None

    def __call__(self, response: Any) -> float:
        from tripwise.llm.wire import request_expectations

        answer = self.wire.parse(response.json())
        try:
            request = response.request
            body = json.loads(request.content) if request.content else {}
        except (ValueError, RuntimeError, AttributeError):  # no request set, or unread body
            body = {}
        if isinstance(body, dict):
            expect = request_expectations(body)
            answer.wants_json = expect["wants_json"]
            answer.response_schema = expect["response_schema"]
            answer.tool_schemas = expect["tool_schemas"]
        report = self.suite.run(answer)
        self.last_report = report
        return report.quality if report.passed else 0.0

    def __repr__(self) -> str:
        return f"BodyCheck({self.suite!r})"


def body_check(checks: Any = None, *, api: str = "openai") -> BodyCheck:
    """``BreakerTransport(checks=[body_check()])``: see :class:`BodyCheck`."""
    return BodyCheck(checks, api=api)


class StreamBodyCheck:
    """Output checks on a streamed answer (OpenAI SSE or Ollama NDJSON bytes) as a stream
    check of a :class:`tripwise.http.BreakerTransport`: ``feed(chunk)`` parses the bytes
    incrementally and answers 0.0 as soon as the text so far fails (a refusal); ``close()``
    runs the full checks on the whole answer. One instance per response."""

    name = "llm_stream"

    def __init__(self, suite: CheckSuite, api: str = "openai") -> None:
        from tripwise.llm.wire import OllamaWire, OpenAIWire

        wire = OpenAIWire("upstream") if api == "openai" else OllamaWire("upstream")
        self.acc = wire.accumulator()
        self.checker = suite.stream_checker()
        self.failure: CheckFailure | None = None
        self.report: CheckReport | None = None

    def feed(self, chunk: bytes) -> float | None:
        for frame in self.acc.frames(chunk):
            delta, _ = self.acc.feed(frame)
            failure = self.checker.feed(delta)
            if failure is not None:
                self.failure = failure
                return 0.0
        return None

    def close(self) -> float:
        self.report = self.checker.finish(self.acc.response())
        if not self.report.passed:
            self.failure = self.report.failures[0]
            return 0.0
        return self.report.quality


def stream_check(checks: Any = None, *, api: str = "openai") -> Callable[[], StreamBodyCheck]:
    """``BreakerTransport(stream_checks=[stream_check()])``: a factory of
    :class:`StreamBodyCheck` (the checks are built, and validated, once, here)."""
    if api not in ("openai", "ollama"):
        raise ValueError(f"api must be 'openai' or 'ollama', got {api!r}")
    suite = build_checks(checks)

    def factory() -> StreamBodyCheck:
        return StreamBodyCheck(suite, api)

    factory.__name__ = "llm_stream"
    return factory
