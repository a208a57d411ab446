"""Wire formats: request bodies and answers of OpenAI-compatible chat completions and of
Ollama's native ``/api/chat`` and ``/api/generate``, with incremental SSE / NDJSON parsers.

Pure functions and small accumulators, no I/O: the clients feed them bytes as they arrive.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from tripwise.llm.errors import LLMHTTPError
from tripwise.llm.response import LLMResponse, ToolCall

# ------------------------------------------------------------------ framing


class SSEParser:
    """Server-sent events, fed bytes in arbitrary pieces; yields each event's ``data``."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += self._decoder.decode(chunk)
        out: list[str] = []
        while True:
            i = self._buf.find("\n")
            if i < 0:
                return out
            line = self._buf[:i].rstrip("\r")
            self._buf = self._buf[i + 1 :]
            if not line:
                if self._data:
                    out.append("\n".join(self._data))
                    self._data = []
            elif line.startswith("data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(" ") else value)
            # comments (":") and other fields (event, id, retry) carry nothing we need

    def close(self) -> list[str]:
        out = self.feed(b"\n\n") if (self._buf or self._data) else []
        return out


class NDJSONParser:
    """Newline-delimited JSON, fed bytes in arbitrary pieces; yields each line's text."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += self._decoder.decode(chunk)
        if "\n" not in self._buf:
            return []
        *lines, self._buf = self._buf.split("\n")
        return [line for line in lines if line.strip()]

    def close(self) -> list[str]:
        rest, self._buf = self._buf, ""
        return [rest] if rest.strip() else []


def _loads(text: str, backend: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise LLMHTTPError(502, f"malformed stream chunk: {text[:200]!r}", backend) from None


# ------------------------------------------------------------------ what the request asked for


def request_expectations(body: dict[str, Any]) -> dict[str, Any]:
    """``wants_json``, ``response_schema`` and ``tool_schemas`` from a request body."""
    wants_json = False
    schema: Any = None
    rf = body.get("response_format")
    if isinstance(rf, dict):
        if rf.get("type") == "json_object":
            wants_json = True
        elif rf.get("type") == "json_schema":
            wants_json = True
            js = rf.get("json_schema")
            schema = js.get("schema") if isinstance(js, dict) else None
    fmt = body.get("format")  # Ollama
    if fmt == "json":
        wants_json = True
    elif isinstance(fmt, dict):
        wants_json, schema = True, fmt
    tools: dict[str, Any] = {}
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            if isinstance(params, dict):
                tools[fn["name"]] = params
    return {
        "wants_json": wants_json,
        "response_schema": schema if isinstance(schema, dict) else None,
        "tool_schemas": tools,
    }


# ------------------------------------------------------------------ OpenAI-compatible


class OpenAIWire:
    """``POST {base_url}/chat/completions``; streams as SSE."""

    framing = "sse"

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def path(self, generate: bool) -> str:
        return "/chat/completions"

    def body(
        self, model: str, messages: list[Any], params: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": messages, **params}
        if stream:
            body["stream"] = True
            body.setdefault("stream_options", {"include_usage": True})
        else:
            body.pop("stream", None)
        return body

    def parse(self, data: Any) -> LLMResponse:
        if not isinstance(data, dict):
            raise LLMHTTPError(502, f"answer is not a JSON object: {str(data)[:200]}", self.backend)
        if "error" in data and "choices" not in data:
            raise LLMHTTPError(502, json.dumps(data["error"])[:500], self.backend)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise LLMHTTPError(502, "answer has no choices", self.backend)
        choice = choices[0]
        message = choice.get("message") or {}
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        calls = [
            ToolCall(
                str(fn.get("name", "")),
                str(fn["arguments"]) if isinstance(fn.get("arguments"), str) else "",
                tc.get("id"),
            )
            for tc in message.get("tool_calls") or ()
            if isinstance(tc, dict) and isinstance(fn := tc.get("function"), dict)
        ]
        lp = choice.get("logprobs")
        logprobs = None
        if isinstance(lp, dict) and isinstance(lp.get("content"), list):
            values = [t.get("logprob") for t in lp["content"] if isinstance(t, dict)]
            logprobs = tuple(float(v) for v in values if isinstance(v, (int, float))) or None
        raw_usage = data.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        return LLMResponse(
            content=str(content),
            model=data.get("model"),
            usage={k: v for k, v in usage.items() if isinstance(v, int)},
            finish_reason=choice.get("finish_reason"),
            tool_calls=calls,
            logprobs=logprobs,
            raw=data,
        )

    def accumulator(self) -> OpenAIStream:
        return OpenAIStream(self.backend)


class OpenAIStream:
    """Builds an answer from chat-completion chunks; ``feed`` returns each chunk's new text."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.model: str | None = None
        self.logprobs: list[float] = []
        self.done = False
        self.parser = SSEParser()

    def frames(self, chunk: bytes) -> list[str]:
        return self.parser.feed(chunk)

    def feed(self, frame: str) -> tuple[str, Any]:
        if frame.strip() == "[DONE]":
            self.done = True
            return "", None
        data = _loads(frame, self.backend)
        if not isinstance(data, dict):
            return "", data
        if "error" in data:
            raise LLMHTTPError(
                502, f"error mid-stream: {json.dumps(data['error'])[:300]}", self.backend
            )
        self.model = data.get("model") or self.model
        if isinstance(data.get("usage"), dict):
            self.usage = {k: v for k, v in data["usage"].items() if isinstance(v, int)}
        delta_text = ""
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                delta_text += text
            for tc in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(
                    tc.get("index", 0), {"id": None, "name": "", "args": []}
                )
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["name"] = fn["name"]
                if isinstance(fn.get("arguments"), str):
                    slot["args"].append(fn["arguments"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            lp = choice.get("logprobs")
            if isinstance(lp, dict):
                for t in lp.get("content") or ():
                    if isinstance(t, dict) and isinstance(t.get("logprob"), (int, float)):
                        self.logprobs.append(float(t["logprob"]))
        if delta_text:
            self.parts.append(delta_text)
        return delta_text, data

    def response(self) -> LLMResponse:
        calls = [
            ToolCall(c["name"], "".join(c["args"]), c["id"]) for _, c in sorted(self.calls.items())
        ]
        return LLMResponse(
            content="".join(self.parts),
            model=self.model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            tool_calls=calls,
            logprobs=tuple(self.logprobs) or None,
        )


# ------------------------------------------------------------------ Ollama native

_OLLAMA_OPTIONS = {"temperature", "top_p", "top_k", "seed", "stop", "num_ctx", "repeat_penalty"}


class OllamaWire:
    """``POST {base_url}/api/chat`` or ``/api/generate``; streams as NDJSON."""

    framing = "ndjson"

    def __init__(self, backend: str, api: str = "chat") -> None:
        self.backend = backend
        self.api = api

    def path(self, generate: bool) -> str:
        return "/api/generate" if generate else "/api/chat"

    def body(
        self, model: str, messages: Any, params: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        params = dict(params)
        options = dict(params.pop("options", None) or {})
        for name in list(params):
            if name in _OLLAMA_OPTIONS:
                options[name] = params.pop(name)
        if "max_tokens" in params:
            options["num_predict"] = params.pop("max_tokens")
        body: dict[str, Any] = {"model": model, **params, "stream": stream}
        if isinstance(messages, str):
            body["prompt"] = messages
        else:
            body["messages"] = messages
        if options:
            body["options"] = options
        return body

    @staticmethod
    def _calls(message: Any) -> list[ToolCall]:
        out = []
        for tc in (message or {}).get("tool_calls") or ():
            fn = tc.get("function") if isinstance(tc, dict) else None
            if not isinstance(fn, dict):
                continue
            args = fn.get("arguments")
            text = args if isinstance(args, str) else json.dumps(args if args is not None else {})
            out.append(ToolCall(str(fn.get("name", "")), text, tc.get("id")))
        return out

    @staticmethod
    def _usage(data: dict[str, Any]) -> dict[str, int]:
        p, c = data.get("prompt_eval_count"), data.get("eval_count")
        if not isinstance(p, int) and not isinstance(c, int):
            return {}
        p = p if isinstance(p, int) else 0
        c = c if isinstance(c, int) else 0
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def parse(self, data: Any) -> LLMResponse:
        if not isinstance(data, dict):
            raise LLMHTTPError(502, f"answer is not a JSON object: {str(data)[:200]}", self.backend)
        if "error" in data:
            raise LLMHTTPError(502, str(data["error"])[:500], self.backend)
        message = data.get("message")
        text = message.get("content") if isinstance(message, dict) else data.get("response")
        return LLMResponse(
            content=text if isinstance(text, str) else "",
            model=data.get("model"),
            usage=self._usage(data),
            finish_reason=data.get("done_reason"),
            tool_calls=self._calls(message) if isinstance(message, dict) else [],
            raw=data,
        )

    def accumulator(self) -> OllamaStream:
        return OllamaStream(self)


class OllamaStream:
    def __init__(self, wire: OllamaWire) -> None:
        self.wire = wire
        self.parts: list[str] = []
        self.calls: list[ToolCall] = []
        self.final: dict[str, Any] = {}
        self.model: str | None = None
        self.done = False
        self.parser = NDJSONParser()

    def frames(self, chunk: bytes) -> list[str]:
        return self.parser.feed(chunk)

    def feed(self, frame: str) -> tuple[str, Any]:
        data = _loads(frame, self.wire.backend)
        if not isinstance(data, dict):
            return "", data
        if "error" in data:
            raise LLMHTTPError(
                502, f"error mid-stream: {str(data['error'])[:300]}", self.wire.backend
            )
        self.model = data.get("model") or self.model
        message = data.get("message")
        text = message.get("content") if isinstance(message, dict) else data.get("response")
        if isinstance(message, dict):
            self.calls.extend(OllamaWire._calls(message))
        if data.get("done"):
            self.done = True
            self.final = data
        if isinstance(text, str) and text:
            self.parts.append(text)
            return text, data
        return "", data

    def response(self) -> LLMResponse:
        return LLMResponse(
            content="".join(self.parts),
            model=self.model,
            usage=OllamaWire._usage(self.final),
            finish_reason=self.final.get("done_reason"),
            tool_calls=self.calls,
        )
