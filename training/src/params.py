"""Parsing of query strings and JSON bodies into typed values, with a 400 naming the bad field."""
from __future__ import annotations

import re
from typing import Any

from flask import request

from training.src.errors import ApiError
from utils import transcripts

TRUE, FALSE = {"true", "1"}, {"false", "0"}
# One entity tag, quoted or not, weak or not: what openapi.py's If-Match pattern allows, and nothing else.
ENTITY_TAG = re.compile(r' *(?:W/)?"?([^" ]+)"? *')
# What a transcript may hold, as imports hold it too (utils/transcripts.py).
MAX_TRANSCRIPT_CHARS = transcripts.MAX_CHARS
BAD_CHARS = transcripts.BAD_CHARS
# Longer search text is no transcript anyone typed, and SQLite refuses LIKE patterns past ~50,000.
MAX_QUERY_CHARS = 500


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ApiError(400, "invalid_parameter", f"'{name}' must be true/false or 1/0, got {raw!r}", parameter=name)


def int_arg(name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be a whole number, got {raw!r}",
                       parameter=name) from None
    if not minimum <= value <= maximum:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be between {minimum} and {maximum}", parameter=name)
    return value


def text_arg(name: str, maximum: int) -> str | None:
    """A free-text parameter, stripped; None when empty."""
    raw = (request.args.get(name) or "").strip()
    if len(raw) > maximum:
        raise ApiError(400, "invalid_parameter", f"'{name}' is longer than {maximum} characters.", parameter=name)
    return raw or None


def choice_arg(name: str, default: str, choices: set[str]) -> str:
    raw = request.args.get(name, default)
    if raw not in choices:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be one of {', '.join(sorted(choices))}",
                       parameter=name)
    return raw


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was wrong with it."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json.loads recurses per level: 50,000 "[" fit the size limit
        raise ApiError(400, "invalid_body", "The request body nests too deeply; send a flat JSON object.") from None
    if body is None:
        if not request.get_data(cache=True):
            raise ApiError(400, "invalid_body", "The request body is empty; send a JSON object.")
        raise ApiError(400, "invalid_body", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    return body


def transcript_field(body: dict[str, Any]) -> str | None:
    return string_field(body, "transcript", MAX_TRANSCRIPT_CHARS)


def string_field(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    """Text a person typed, held to a transcript's rules: None when absent."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"'{name}' must be a string.", field=name)
    if len(value) > max_chars:
        raise ApiError(400, "invalid_field", f"'{name}' is longer than {max_chars} characters.", field=name)
    if BAD_CHARS.search(value):
        raise ApiError(400, "invalid_field", f"'{name}' contains control characters or invalid Unicode.", field=name)
    return value


def flag_field(body: dict[str, Any], name: str) -> bool | None:
    """A true/false field of a JSON body; None when absent. null is refused like any other
    non-flag, as for `transcript`: leaving a field out is how to keep it unchanged."""
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ApiError(400, "invalid_field", f"'{name}' must be true/false or 0/1.", field=name)


def if_match() -> str | None:
    """The version the client last saw, from `If-Match` (quotes and a weak prefix allowed)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    match = ENTITY_TAG.fullmatch(raw)
    if not match:
        raise ApiError(400, "invalid_header", "If-Match must hold one version (an ETag such as \"1a2b3c\"), or be "
                       "left out to save whatever the item holds now.")
    return match.group(1)
