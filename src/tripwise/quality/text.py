"""Scorers for LLM / text completions: empty, truncated, refused, malformed, looping, unsure.

An LLM endpoint that answers 200 can still fail softly: it returns nothing, stops at the token
limit, refuses, emits JSON that does not parse, repeats itself, or is unsure of every token.
Every scorer accepts a plain string or an OpenAI-style response (chat or legacy completions
dict, or an SDK object with ``model_dump()``); Ollama and Anthropic-style dicts work too.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tripwise.core.conditions import check_int
from tripwise.quality._inputs import clip01

logger = logging.getLogger("tripwise.quality")

MALFORMED = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
"""What a malformed response can raise while it is parsed; scorers turn these into 0.0."""


def _malformed(scorer: str, exc: BaseException) -> float:
    logger.debug("%s: score 0.0, malformed response: %s", scorer, exc)
    return 0.0


def _parse_or_none(response: Any, scorer: str) -> Completion | None:
    try:
        return parse_completion(response)
    except MALFORMED as exc:
        _malformed(scorer, exc)
        return None


@dataclass(frozen=True)
class Completion:
    """What the text scorers look at, pulled out of a response."""

    text: str
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None


def _choice(d: dict[str, Any]) -> Completion:
    choices = d.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("response has an empty 'choices' list: no completion to score")
    c = choices[0]
    if not isinstance(c, dict):
        raise TypeError(f"response choices[0] must be a dict, got {type(c).__name__}")
    message = c.get("message")
    if isinstance(message, dict):
        text = message.get("content")
    elif "text" in c:
        text = c["text"]
    else:
        delta = c.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
    lp = c.get("logprobs")
    values: list[Any] | None = None
    if isinstance(lp, dict):
        if isinstance(lp.get("content"), list):  # chat completions
            values = [t.get("logprob") for t in lp["content"] if isinstance(t, dict)]
        elif isinstance(lp.get("token_logprobs"), list):  # legacy completions
            values = lp["token_logprobs"]
    return Completion(_text(text), _reason(c.get("finish_reason")), _logprobs(values))


def _reason(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    raise TypeError(f"completion text must be a string, got {type(value).__name__}")


def _logprobs(values: Sequence[Any] | None) -> tuple[float, ...] | None:
    if not values:
        return None
    out = []
    for v in values:
        if v is None:  # legacy completions give None for the first prompt token
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v > 0:
            raise ValueError(f"token logprobs must be numbers <= 0, got {v!r}")
        out.append(float(v))
    return tuple(out) or None


def parse_completion(response: Any) -> Completion:
    """Extract text, finish reason and token logprobs from a response (or a plain string)."""
    if isinstance(response, Completion):
        return response
    if isinstance(response, str):
        return Completion(response)
    if hasattr(response, "model_dump") and callable(response.model_dump):
        response = response.model_dump()
    if not isinstance(response, dict):
        raise TypeError(
            "response must be a string, an OpenAI-style response dict or an SDK object with "
            f"model_dump(), got {type(response).__name__}"
        )
    if "choices" in response:
        return _choice(response)
    if isinstance(response.get("message"), dict):  # Ollama chat
        return Completion(
            _text(response["message"].get("content")), _reason(response.get("done_reason"))
        )
    if "response" in response:  # Ollama generate
        return Completion(_text(response["response"]), _reason(response.get("done_reason")))
    if "content" in response:  # Anthropic messages
        return Completion(_text(response["content"]), _reason(response.get("stop_reason")))
    raise ValueError(
        "response dict has none of 'choices', 'message', 'response', 'content'; "
        f"keys were {sorted(response)[:10]}"
    )


TRUNCATION_REASONS = frozenset({"length", "max_tokens"})


def non_empty(response: Any) -> float:
    """0.0 when the answer is empty or only whitespace (or the response is malformed)."""
    c = _parse_or_none(response, "non_empty")
    return 1.0 if c is not None and c.text.strip() else 0.0


def not_truncated(response: Any) -> float:
    """0.0 when generation stopped at the token limit (``finish_reason == "length"``) or the
    response is malformed, else 1.0. A plain string carries no finish reason and scores 1.0."""
    c = _parse_or_none(response, "not_truncated")
    return 0.0 if c is None or c.finish_reason in TRUNCATION_REASONS else 1.0


DEFAULT_REFUSALS: tuple[str, ...] = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm sorry, but i can",
    "i am sorry, but i can",
    "i'm unable to",
    "i am unable to",
    "i won't be able to",
    "as an ai language model",
    "i'm not able to provide",
    "i cannot provide",
    "i can't provide",
    "i'm not able to help",
    "i am not able to help",
    "i'm not able to assist",
    "i am not able to assist",
    "not able to help with this",
    "i cannot comply",
    "i can't comply",
    "i will not comply",
    "i won't comply",
    "i must decline",
    "i have to decline",
    "i must refuse",
    "i can't fulfill",
    "i cannot fulfill",
    "i can't do that",
    "i cannot do that",
    "i'm unable to help",
    "i'm not comfortable",
    "i'm sorry, but i won't",
    "i'm sorry, i can't",
    "i'm sorry, i cannot",
    "sorry, i can't help",
    "sorry, i cannot help",
    "sorry, but i can't",
    "i apologize, but i can",
    "i apologize, but i'm not able",
    "i apologize, but i am not able",
    "i apologize, but i won't",
    "i can't answer that",
    "i cannot answer that",
    "as an ai, i",
    "it is not appropriate for me",
    "it's not appropriate for me",
    "this request violates",
    "against my guidelines",
    "i'm not allowed to",
    "i am not allowed to",
)
"""Phrases that open typical refusals (matched case-insensitively, curly apostrophes folded)."""


class RefusalScorer:
    """0.0 when the answer contains a refusal phrase, else 1.0.

    ``phrases`` replaces the default list; ``within`` limits the search to the first N
    characters (refusals come first; a long answer quoting "I cannot provide" later is fine).
    """

    def __init__(self, phrases: Iterable[str] | None = None, *, within: int | None = 300) -> None:
        items = DEFAULT_REFUSALS if phrases is None else tuple(phrases)
        if isinstance(phrases, str):
            raise TypeError("phrases must be a list of strings, not a single string")
        if not items or not all(isinstance(p, str) and p.strip() for p in items):
            raise ValueError("phrases must be a non-empty list of non-blank strings")
        if within is not None and (
            isinstance(within, bool) or not isinstance(within, int) or within < 1
        ):
            raise ValueError(f"within must be an integer >= 1 or None, got {within!r}")
        self.phrases = tuple(_fold(p) for p in items)
        self.within = within

    def __call__(self, response: Any) -> float:
        c = _parse_or_none(response, "RefusalScorer")
        if c is None:
            return 0.0
        text = _fold(c.text[: self.within * 4] if self.within is not None else c.text)
        if self.within is not None:
            text = text[: self.within]
        return 0.0 if any(p in text for p in self.phrases) else 1.0

    def __repr__(self) -> str:
        return f"RefusalScorer({len(self.phrases)} phrases, within={self.within!r})"


def _fold(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").lower().split())


not_refused = RefusalScorer()
"""The refusal scorer with the default phrase list."""

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


MAX_JSON_DEPTH = 500
"""Deeper JSON scores 0.0 on every Python: 3.11's parser gives up near 1,000 levels, 3.13's
goes far deeper, and no sane answer nests this much (a model stuck in a loop does)."""


def _json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


class JsonScorer:
    """1.0 when the answer is valid JSON (matching ``schema``, if given), else 0.0.

    A surrounding markdown code fence is removed first unless ``strip_code_fence=False``.
    Schema validation uses ``jsonschema`` (``pip install 'tripwise[llm]'``). JSON nested
    deeper than :data:`MAX_JSON_DEPTH` levels scores 0.0.
    """

    def __init__(
        self, schema: dict[str, Any] | None = None, *, strip_code_fence: bool = True
    ) -> None:
        self.schema = schema
        self.strip_code_fence = bool(strip_code_fence)
        self._validator: Any = None
        if schema is not None:
            if not isinstance(schema, dict):
                raise TypeError(f"schema must be a JSON Schema dict, got {type(schema).__name__}")
            try:
                import jsonschema
            except ImportError:
                raise ImportError(
                    "JsonScorer(schema=...) needs jsonschema: pip install 'tripwise[llm]'"
                ) from None
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)  # a broken schema is a bug to report now, not a low score
            self._validator = cls(schema)

    def __call__(self, response: Any) -> float:
        return self.explain(response)[0]

    def explain(self, response: Any) -> tuple[float, str]:
        """The score and, for 0.0, why (``"ok"`` for 1.0)."""
        try:
            text = parse_completion(response).text
        except MALFORMED as exc:
            return 0.0, f"malformed response: {exc}"
        if self.strip_code_fence:
            m = _FENCE.match(text)
            if m:
                text = m.group(1)
        try:
            value = json.loads(text)
        except RecursionError:  # nested too deep for the parser: a model stuck in a loop
            return 0.0, "JSON nested too deeply to parse"
        except ValueError as exc:
            return 0.0, f"invalid JSON: {exc}"
        if _json_depth_exceeds(value, MAX_JSON_DEPTH):
            return 0.0, "JSON nested too deeply to parse"
        if self._validator is not None:
            try:
                valid = self._validator.is_valid(value)
            except RecursionError:
                return 0.0, "JSON nested too deeply to validate"
            if not valid:
                return 0.0, "JSON does not match the schema"
        return 1.0, "ok"

    def __repr__(self) -> str:
        return f"JsonScorer(schema={'...' if self.schema is not None else None})"


valid_json = JsonScorer()
"""1.0 when the answer parses as JSON."""


def repetition_score(response: Any, *, n: int = 3) -> float:
    """Share of distinct word ``n``-grams among all of them: 1.0 for text that never repeats
    itself, near 0.0 for a generation stuck in a loop. Texts shorter than ``n + 1`` words
    score 1.0 (too short to loop)."""
    check_int("n", n)
    c = _parse_or_none(response, "repetition_score")
    if c is None:
        return 0.0
    words = c.text.lower().split()
    total = len(words) - n + 1
    if total < 2:
        return 1.0
    distinct = len({tuple(words[i : i + n]) for i in range(total)})
    return clip01((distinct - 1) / (total - 1))


def mean_token_probability(response: Any) -> float:
    """``exp(mean token logprob)``: the geometric mean probability of the generated tokens.

    Falls when the model is unsure of what it writes. Needs a response with logprobs
    (``logprobs=True`` in the request); raises ValueError when there are none (a setup
    mistake, not a bad answer). Malformed logprobs (NaN, positive, not numbers) score 0.0.
    """
    try:
        lp = parse_completion(response).logprobs
    except MALFORMED as exc:
        return _malformed("mean_token_probability", exc)
    if lp is None:
        raise ValueError(
            "response has no token logprobs; request them (logprobs=True) or leave this scorer out"
        )
    return _token_probability(lp)


def _token_probability(lp: tuple[float, ...]) -> float:
    try:
        mean = math.fsum(lp) / len(lp)
    except OverflowError:  # logprobs near -1e308: the model gave these tokens no chance
        return 0.0
    if not math.isfinite(mean):  # -inf logprobs: a token the model gave no chance at all
        return 0.0
    return clip01(math.exp(mean))


class TextQuality:
    """The minimum of the text checks that apply: non-empty, not truncated, not refused,
    no repetition loop, optionally valid JSON (``json=True`` or a ``schema``), and the mean
    token probability when the response carries logprobs (``use_logprobs``).

    Use it as ``score_fn`` of a breaker guarding an LLM call.
    """

    def __init__(
        self,
        *,
        json: bool = False,
        schema: dict[str, Any] | None = None,
        refusals: Iterable[str] | None = None,
        repetition_n: int = 3,
        use_logprobs: bool = True,
    ) -> None:
        self.refusal = RefusalScorer(refusals)
        self.json = JsonScorer(schema) if (json or schema is not None) else None
        repetition_score("", n=repetition_n)  # validates n now
        self.repetition_n = repetition_n
        self.use_logprobs = bool(use_logprobs)

    def __call__(self, response: Any) -> float:
        return self.explain(response)[0]

    def explain(self, response: Any) -> tuple[float, str]:
        """The score and the reason for it: the first check that failed, or ``"ok"``.

        Never raises on what a model returned: a malformed response (empty ``choices``,
        missing fields, wrong types, logprobs that are not numbers) scores 0.0 with the
        parser's message as the reason."""
        try:
            c = parse_completion(response)
        except MALFORMED as exc:
            return 0.0, f"malformed response: {exc}"
        if not c.text.strip():
            return 0.0, "empty answer"
        if c.finish_reason in TRUNCATION_REASONS:
            return 0.0, f"truncated (finish_reason={c.finish_reason!r})"
        if not self.refusal(c):
            return 0.0, "refusal"
        if self.json is not None:
            score, why = self.json.explain(c)
            if not score:
                return 0.0, why
        scores = [repetition_score(c, n=self.repetition_n)]
        if self.use_logprobs and c.logprobs is not None:
            scores.append(_token_probability(c.logprobs))
        score = min(scores)
        if score < 1.0:
            which = "repetition" if scores[0] == score else "token probability"
            return score, f"{which} score {score:.3g}"
        return 1.0, "ok"

    def __repr__(self) -> str:
        return f"TextQuality(json={self.json is not None}, use_logprobs={self.use_logprobs})"
