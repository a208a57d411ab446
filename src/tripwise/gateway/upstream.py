"""How the gateway talks to one live backend: OpenAI-compatible (vLLM, MAX, OpenAI) or Ollama.

A proxy forwards requests, so this layer keeps the OpenAI wire shape end to end: a
non-streaming call returns the upstream's ``chat.completion`` object, a stream yields OpenAI
``chat.completion.chunk`` objects (Ollama's NDJSON is translated to them). Every failure is an
:class:`UpstreamError` whose ``reason`` is what the audit header shows (``error:503``,
``error:timeout``, ``error:connect``, ``error:first_byte_timeout``, ``error:stall``...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from tripwise.gateway.config import BackendConfig
from tripwise.gateway.jsonio import dumps, loads


class UpstreamError(Exception):
    """A backend did not give a usable answer; ``reason`` names why, ``status`` the HTTP code
    (when there was one) and ``retry_after`` what the backend asked for (seconds)."""

    def __init__(
        self,
        reason: str,
        message: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable
        super().__init__(message or reason)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None


def _status_error(resp: httpx.Response, body: bytes) -> UpstreamError:
    code = resp.status_code
    text = body[:300].decode("utf-8", "replace")
    # 4xx other than 408/409/429 is the request's fault: another backend will say the same.
    retryable = code >= 500 or code in (408, 409, 429)
    return UpstreamError(
        f"error:{code}",
        f"upstream answered HTTP {code}: {text}",
        status=code,
        retry_after=_retry_after(resp.headers),
        retryable=retryable,
    )


def _transport_error(exc: Exception) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("error:timeout", f"upstream timed out: {exc!r}")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError("error:connect", f"cannot connect to upstream: {exc}")
    return UpstreamError("error:transport", f"upstream transport failed: {exc!r}")


class Upstream:
    """One live backend's HTTP side (a pooled ``httpx.AsyncClient``)."""

    def __init__(self, cfg: BackendConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        self.cfg = cfg
        headers = dict(cfg.headers)
        if cfg.api_key:
            headers["authorization"] = f"Bearer {cfg.api_key}"
        self._client = httpx.AsyncClient(
            base_url=cfg.url,
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=256),
            transport=transport,
        )
        self.ollama = cfg.type == "ollama"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        out = dict(body)
        if self.cfg.model is not None:
            out["model"] = self.cfg.model
        if self.ollama:
            return _to_ollama(out, stream)
        out["stream"] = stream
        if not stream:
            out.pop("stream_options", None)
        return out

    # ------------------------------------------------------------------ JSON

    async def complete(self, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """The upstream's chat.completion for ``body`` within ``timeout`` seconds."""
        path = "/api/chat" if self.ollama else "/chat/completions"
        payload = dumps(self._body(body, False))
        try:
            resp = await self._client.post(
                path,
                content=payload,
                headers={"content-type": "application/json"},
                timeout=httpx.Timeout(timeout, connect=min(timeout, self.cfg.connect_timeout)),
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if resp.status_code != 200:
            raise _status_error(resp, resp.content)
        try:
            data = loads(resp.content)
        except ValueError as exc:
            raise UpstreamError("error:invalid_json", "upstream sent invalid JSON") from exc
        if not isinstance(data, dict):
            raise UpstreamError("error:invalid_json", "upstream sent a non-object")
        if self.ollama:
            return _from_ollama(data, str(body.get("model") or ""))
        return data

    # ------------------------------------------------------------------ streaming

    async def stream(
        self, body: Mapping[str, Any], first_byte_timeout: float, stall_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the upstream's chunks; raise UpstreamError on a status, a timeout or a stall.
        The stream ends normally only on ``[DONE]`` (OpenAI) or ``done: true`` (Ollama)."""
        path = "/api/chat" if self.ollama else "/chat/completions"
        req = self._client.build_request(
            "POST",
            path,
            content=dumps(self._body(body, True)),
            headers={"content-type": "application/json"},
            timeout=httpx.Timeout(
                max(first_byte_timeout, stall_timeout),
                connect=min(first_byte_timeout, self.cfg.connect_timeout),
            ),
        )
        try:
            resp = await asyncio.wait_for(self._client.send(req, stream=True), first_byte_timeout)
        except asyncio.TimeoutError as exc:
            raise UpstreamError("error:first_byte_timeout", "no answer before first byte") from exc
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        try:
            if resp.status_code != 200:
                raise _status_error(resp, await resp.aread())
            lines = resp.aiter_lines()
            waiting = first_byte_timeout
            reason = "error:first_byte_timeout"
            model = str(body.get("model") or "")
            created = int(time.time())
            while True:
                try:
                    line = await asyncio.wait_for(lines.__anext__(), waiting)
                except StopAsyncIteration:
                    raise UpstreamError(
                        "error:truncated", "upstream closed the stream before its end"
                    ) from None
                except asyncio.TimeoutError as exc:
                    raise UpstreamError(reason, f"no data for {waiting:g}s") from exc
                except httpx.HTTPError as exc:
                    raise _transport_error(exc) from exc
                waiting, reason = stall_timeout, "error:stall"
                if not line:
                    continue
                if self.ollama:
                    chunk = _ollama_chunk(line, model, created)
                    done = chunk.pop("_done", False)
                    yield chunk
                    if done:
                        return
                    continue
                if not line.startswith("data:"):
                    continue  # comments, event: and id: lines
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    parsed = loads(data)
                except ValueError as exc:
                    raise UpstreamError("error:invalid_json", "invalid JSON in stream") from exc
                if isinstance(parsed, dict) and "error" in parsed and "choices" not in parsed:
                    raise UpstreamError("error:stream_error", f"upstream error event: {data[:300]}")
                if isinstance(parsed, dict):
                    yield parsed
        finally:
            await resp.aclose()

    # ------------------------------------------------------------------ passthrough

    async def passthrough(
        self, method: str, path: str, body: bytes | None, timeout: float
    ) -> httpx.Response:
        """Forward a request (``/models``, ``/embeddings``) as is; the caller reads the answer."""
        try:
            return await self._client.request(
                method,
                path,
                content=body,
                headers={"content-type": "application/json"} if body is not None else None,
                timeout=httpx.Timeout(timeout, connect=min(timeout, self.cfg.connect_timeout)),
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc


# ---------------------------------------------------------------------------- Ollama shape

_OLLAMA_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "num_predict",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def _to_ollama(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": body.get("model"),
        "messages": body.get("messages", []),
        "stream": stream,
    }
    options = {o: body[k] for k, o in _OLLAMA_OPTIONS.items() if body.get(k) is not None}
    if options:
        out["options"] = options
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            out["format"] = "json"
        elif fmt.get("type") == "json_schema":
            schema = fmt.get("json_schema")
            if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
                out["format"] = schema["schema"]
    if body.get("tools"):
        out["tools"] = body["tools"]
    return out


def _finish(data: Mapping[str, Any]) -> str | None:
    if not data.get("done"):
        return None
    reason = data.get("done_reason") or "stop"
    return "length" if reason == "length" else "stop"


def _from_ollama(data: Mapping[str, Any], model: str) -> dict[str, Any]:
    raw_msg = data.get("message")
    msg: Mapping[str, Any] = raw_msg if isinstance(raw_msg, Mapping) else {}
    message: dict[str, Any] = {"role": "assistant", "content": msg.get("content", "")}
    finish = _finish(data) or "stop"
    if msg.get("tool_calls"):
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": dumps((c.get("function") or {}).get("arguments", {})).decode(),
                },
            }
            for i, c in enumerate(msg["tool_calls"])
        ]
        finish = "tool_calls"
    prompt, completion = data.get("prompt_eval_count", 0), data.get("eval_count", 0)
    return {
        "id": f"chatcmpl-ollama-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _ollama_chunk(line: str, model: str, created: int) -> dict[str, Any]:
    try:
        data = loads(line)
    except ValueError as exc:
        raise UpstreamError("error:invalid_json", "invalid JSON in Ollama stream") from exc
    if not isinstance(data, dict):
        raise UpstreamError("error:invalid_json", "invalid Ollama stream line")
    if "error" in data:
        raise UpstreamError("error:stream_error", f"Ollama error: {str(data['error'])[:300]}")
    raw_msg = data.get("message")
    msg: Mapping[str, Any] = raw_msg if isinstance(raw_msg, Mapping) else {}
    delta: dict[str, Any] = {}
    if msg.get("content"):
        delta["content"] = msg["content"]
    chunk: dict[str, Any] = {
        "id": f"chatcmpl-ollama-{created}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": data.get("model") or model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": _finish(data)}],
    }
    if data.get("done"):
        chunk["_done"] = True
    return chunk
