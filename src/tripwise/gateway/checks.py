"""Which answers the gateway refuses to pass on: the output checks of a backend.

A check looks at an OpenAI ``chat.completion`` (or the text of a stream so far) and returns
None or the audit reason (``quality:empty``, ``quality:truncated``, ``quality:refusal``,
``quality:json_schema``...). A failed check moves the request to the next backend and counts
against the backend's breaker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tripwise.gateway.jsonio import loads

_REFUSAL_RE = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry, (but )?i|i can(no|')t (help|assist|do|provide)|"
    r"i cannot (help|assist|do|provide)|i'?m (not able|unable) to|i am (not able|unable) to|"
    r"as an ai( language model)?,? i (can(no|')t|am unable))",
    re.IGNORECASE,
)


def first_choice(completion: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = completion.get("choices")
    if isinstance(choices, Sequence) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return {}


def text_of(completion: Mapping[str, Any]) -> str:
    msg = first_choice(completion).get("message")
    content = msg.get("content") if isinstance(msg, Mapping) else None
    return content if isinstance(content, str) else ""


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL_RE.match(text[:200]))


def wants_json(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema the client asked for (``{}`` for plain JSON mode), or None."""
    fmt = body.get("response_format")
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_object":
        return {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, Mapping) and isinstance(spec.get("schema"), Mapping):
            found: Mapping[str, Any] = spec["schema"]
            return found
        return {}
    return None


def check_json(text: str, schema: Mapping[str, Any] | None) -> str | None:
    try:
        value = loads(text)
    except ValueError:
        return "quality:invalid_json"
    if schema:
        import jsonschema

        try:
            jsonschema.validate(value, dict(schema))
        except jsonschema.ValidationError:
            return "quality:json_schema"
        except jsonschema.SchemaError:
            return None  # the client's schema is broken; not the backend's fault
    return None


def check_completion(
    completion: Mapping[str, Any],
    checks: Sequence[str],
    *,
    request: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
) -> str | None:
    """The first failed check of a whole answer, or None when it may be served."""
    choice = first_choice(completion)
    if not choice:
        return "quality:no_choices"
    raw_msg = choice.get("message")
    msg: Mapping[str, Any] = raw_msg if isinstance(raw_msg, Mapping) else {}
    content = msg.get("content")
    has_tools = bool(msg.get("tool_calls"))
    text: str = content if isinstance(content, str) else ""
    finish = choice.get("finish_reason")
    if "empty" in checks and not has_tools and not text.strip():
        return "quality:empty"
    if "finish_reason" in checks and finish in ("length", "content_filter"):
        return "quality:truncated" if finish == "length" else "quality:content_filter"
    if "refusal" in checks and (msg.get("refusal") or looks_like_refusal(text)):
        return "quality:refusal"
    asked = wants_json(request)
    if not has_tools and (asked is not None or ("json_schema" in checks and schema is not None)):
        return check_json(text, asked or schema)
    return None
