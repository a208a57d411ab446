"""JSON in and out of the gateway: orjson when installed (the server extra has it), else the
standard library. Both reject NaN and infinities on output."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()

    def loads(data: bytes | str) -> Any:
        return json.loads(data)
