"""Which answers the gateway refuses to pass on: the output checks of :mod:`tripwise.llm`,
applied to the OpenAI-shaped answers the gateway forwards.

A backend's ``checks:`` are names of :data:`tripwise.llm.CHECKS` (``non_empty``,
``finish_reason``, ``refusal``, ``json``, ``tool_args``, ``min_tokens``, ``repetition``,
``logprob``; ``empty`` is an alias of ``non_empty``). ``json`` and ``tool_args`` act only when
the request asked for JSON or tools; a backend ``json_schema:`` adds a schema every answer must
match. A failure is reported with the audit reason of the issue's vocabulary:
``quality:empty``, ``quality:truncated``, ``quality:content_filter``, ``quality:refusal``,
``quality:invalid_json``, ``quality:json_schema``, ``quality:tool_args``...
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tripwise.llm.checks import CHECKS as LLM_CHECKS
from tripwise.llm.checks import CheckSuite, StreamChecker, build_checks
from tripwise.llm.response import LLMResponse
from tripwise.llm.wire import OpenAIWire, request_expectations

ALIASES = {"empty": "non_empty"}
KNOWN = tuple(sorted({*LLM_CHECKS, *ALIASES}))
DEFAULT = ("non_empty", "finish_reason", "refusal", "json", "tool_args")
_WIRE = OpenAIWire("upstream")


def first_choice(completion: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = completion.get("choices")
    if isinstance(choices, Sequence) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return {}


def text_of(completion: Mapping[str, Any]) -> str:
    msg = first_choice(completion).get("message")
    content = msg.get("content") if isinstance(msg, Mapping) else None
    return content if isinstance(content, str) else ""


def _label(check: str, response: LLMResponse) -> str:
    if check == "non_empty":
        return "quality:empty"
    if check == "finish_reason":
        reason = response.finish_reason
        return "quality:content_filter" if reason == "content_filter" else "quality:truncated"
    if check in ("json", "json_schema"):
        try:
            json.loads(response.content)
        except ValueError:
            return "quality:invalid_json"
        return "quality:json_schema"
    return f"quality:{check}"


def _expect(response: LLMResponse, request: Mapping[str, Any]) -> None:
    expect = request_expectations(dict(request))
    response.wants_json = expect["wants_json"]
    response.response_schema = expect["response_schema"]
    response.tool_schemas = expect["tool_schemas"]


class BackendChecks:
    """The checks of one backend, built once from its config."""

    def __init__(self, names: Sequence[str], json_schema: Mapping[str, Any] | None = None):
        spec: list[Any] = []
        for name in names:
            name = ALIASES.get(name, name)
            if name == "json_schema":
                continue  # needs the schema: added below
            spec.append(name)
        if json_schema is not None:
            spec.append(("json_schema", {"schema": dict(json_schema)}))
        self.suite: CheckSuite = build_checks(spec)

    def check(
        self, completion: Mapping[str, Any], request: Mapping[str, Any]
    ) -> tuple[str | None, float]:
        """(audit reason of the first failed check or None, quality score in [0, 1])."""
        if not first_choice(completion):
            return "quality:no_choices", 0.0
        try:
            response = _WIRE.parse(dict(completion))
        except Exception:  # an answer the parser refuses is not an answer
            return "quality:malformed", 0.0
        _expect(response, request)
        report = self.suite.run(response)
        if report.passed:
            return None, report.quality
        return _label(report.failures[0].check, response), 0.0

    def stream(self) -> StreamChecker:
        """Incremental checks for a stream inside its hold window."""
        return self.suite.stream_checker()


def check_completion(
    completion: Mapping[str, Any],
    checks: Sequence[str],
    *,
    request: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
) -> str | None:
    """The audit reason of the first failed check of a whole answer, or None."""
    return BackendChecks(checks, schema).check(completion, request)[0]


def partial_reason(check: str) -> str:
    """The audit reason of a check that failed on a stream's text so far."""
    return "quality:empty" if check == "non_empty" else f"quality:{check}"
