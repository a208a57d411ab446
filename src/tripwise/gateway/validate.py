"""The edge of the gateway: a request body is checked before any backend sees it.

Every problem is an OpenAI-shaped 400 naming the parameter (``messages[0].role``...), never a
500. JSON that is not UTF-8, holds lone surrogates, NaN/Infinity or nests too deep is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_BODY = 8 * 1024 * 1024
_MAX_DEPTH = 64


class BadRequest(Exception):
    """A client error: ``status``, an OpenAI ``type``/``code`` and the offending ``param``."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int = 400,
        code: str = "invalid_request",
        type_: str = "invalid_request_error",
    ) -> None:
        self.status = status
        self.param = param
        self.code = code
        self.type = type_
        super().__init__(message)


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not valid JSON (numbers must be finite)", code="invalid_json")


def _depth(value: Any, level: int = 0) -> None:
    if level > _MAX_DEPTH:
        raise BadRequest(
            f"the JSON body nests deeper than {_MAX_DEPTH} levels", code="invalid_json"
        )
    if isinstance(value, dict):
        for v in value.values():
            _depth(v, level + 1)
    elif isinstance(value, list):
        for v in value:
            _depth(v, level + 1)


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest."""
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8", code="invalid_json") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("the JSON body nests too deep", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    _depth(value)
    try:
        json.dumps(value).encode("utf-8")  # lone surrogates (\ud800) cannot be forwarded
        text.encode("utf-8")
        _check_surrogates(value)
    except UnicodeEncodeError:
        raise BadRequest("the JSON body holds a lone surrogate", code="invalid_json") from None
    return value


def _check_surrogates(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for k, v in value.items():
            k.encode("utf-8")
            _check_surrogates(v)
    elif isinstance(value, list):
        for v in value:
            _check_surrogates(v)


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    if name not in body or body[name] is None:
        return
    v = body[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadRequest(f"{name} must be a number, got {v!r}", param=name)
    if not low <= v <= high:
        raise BadRequest(f"{name} must be in [{low:g}, {high:g}], got {v!r}", param=name)


def _integer(body: Mapping[str, Any], name: str, low: int, high: int) -> None:
    if name not in body or body[name] is None:
        return
    v = body[name]
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise BadRequest(f"{name} must be an integer in [{low}, {high}], got {v!r}", param=name)


def check_chat(body: Mapping[str, Any]) -> None:
    """Validate a chat.completions request (the fields the gateway relies on)."""
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model or len(model) > 256):
        raise BadRequest(f"model must be a non-empty string, got {model!r}", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of messages", param="messages")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise BadRequest(f"{where} must be an object, got {m!r}", param=where)
        role = m.get("role")
        if role not in ROLES:
            raise BadRequest(
                f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}",
                param=f"{where}.role",
            )
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise BadRequest(
                f"{where}.content must be a string or a list of parts, got {content!r}",
                param=f"{where}.content",
            )
        if content is None and role in ("system", "developer", "user"):
            raise BadRequest(f"{where}.content is required", param=f"{where}.content")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest(f"stream must be true or false, got {stream!r}", param="stream")
    _number(body, "temperature", 0.0, 2.0)
    _number(body, "top_p", 0.0, 1.0)
    _number(body, "presence_penalty", -2.0, 2.0)
    _number(body, "frequency_penalty", -2.0, 2.0)
    _integer(body, "max_tokens", 1, 10_000_000)
    _integer(body, "max_completion_tokens", 1, 10_000_000)
    _integer(body, "n", 1, 1)
    fmt = body.get("response_format")
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise BadRequest(
            "response_format must be {'type': 'text' | 'json_object' | 'json_schema', ...}",
            param="response_format",
        )
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("tools must be a list", param="tools")


def check_embeddings(body: Mapping[str, Any]) -> None:
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise BadRequest(f"model must be a non-empty string, got {model!r}", param="model")
    value = body.get("input")
    ok = isinstance(value, str) or (
        isinstance(value, list)
        and value
        and (
            all(isinstance(v, str) for v in value)
            or all(isinstance(v, int) for v in value)
            or all(isinstance(v, list) for v in value)
        )
    )
    if not ok:
        raise BadRequest(
            "input must be a string, a non-empty list of strings or of token ids", param="input"
        )
