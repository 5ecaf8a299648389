"""The item input schema (JSON Schema 2020-12) and validation naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from unicodedata import category

import jsonschema
from jsonschema.exceptions import best_match

from ticker.exceptions import ValidationError

__all__ = ["StrictValidator", "item_schema", "parse_time", "raise_first_error", "validate_item"]


def _is_strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


# JSON Schema counts 1.0 as an integer (a number with no fractional part), and
# jsonschema follows it; the API does not: an integer field refuses 1.0 (a client
# sending floats has a bug worth hearing about, and the stored item keeps its type).
StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", _is_strict_integer
    ),
)

# Plain text: no C0/C1 controls except tab, CR and LF (folded to spaces later),
# and at least one visible character.
_PLAIN = r"^(?=[\s\S]*\S)[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
# An http(s) URL without whitespace, quotes, angle brackets or C0/C1 controls (NUL, ESC...).
_URL = r"^https?://[^\s<>\"\u0000-\u001f\u007f-\u009f]+$"
_SLUG = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,39}$"}
_TIME = {"type": "string", "maxLength": 40}
# Fields held to _PLAIN; each also needs a character that is neither whitespace nor a format
# control (a headline of only U+200B or U+202E would show nothing).
_PLAIN_FIELDS = ("headline", "summary", "source", "byline", "correction_note")
# The schema needs three levels (object, list, string). Deeper values are refused before
# validation, which recurses (and would exhaust the stack on a value nested a thousand deep).
MAX_DEPTH = 8
# Date-times accepted for expires_at and embargoed_until, by their UTC year.
MIN_YEAR, MAX_YEAR = 1970, 9998


def _text(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": _PLAIN}


@lru_cache(maxsize=8)
def item_schema(editions: tuple[str, ...], partial: bool = False) -> dict[str, Any]:
    """Schema for POST (all required fields) or PATCH (partial, plus a correction note)."""
    props: dict[str, Any] = {
        "headline": _text(300),
        "edition": {"type": "string", "enum": list(editions)},
        "language": {"type": "string", "pattern": r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"},
        "summary": _text(1000),
        "body": {"type": "string", "maxLength": 20000},
        "url": {"type": "string", "maxLength": 2048, "pattern": _URL},
        "categories": {"type": "array", "items": _SLUG, "maxItems": 10, "uniqueItems": True},
        "regions": {"type": "array", "items": _SLUG, "maxItems": 10, "uniqueItems": True},
        "tags": {"type": "array", "items": _text(50), "maxItems": 20, "uniqueItems": True},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 9},
        "source": _text(200),
        "byline": _text(200),
        "expires_at": _TIME,
        "embargoed_until": _TIME,
        "pinned": {"type": "boolean"},
        "force": {"type": "boolean"},
    }
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    if partial:
        del props["edition"]  # an item never moves edition; post a new one instead
        props["correction_note"] = _text(500)
        schema["minProperties"] = 1
    else:
        schema["required"] = ["headline", "edition"]
    return schema


@lru_cache(maxsize=8)
def _validator(editions: tuple[str, ...], partial: bool) -> jsonschema.Draft202012Validator:
    return StrictValidator(item_schema(editions, partial))  # type: ignore[no-any-return]


def _field_of(error: jsonschema.ValidationError) -> str | None:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else None
        return ".".join([*path, missing]) if missing else None
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ".".join([*path, extra[0]]) if extra else None
    return ".".join(path) or None


def _message(error: jsonschema.ValidationError, field: str | None) -> str:
    v = error.validator
    if v == "required":
        return f"{field} is required"
    if v == "additionalProperties":
        return f"{field} is not a known field"
    if (
        v == "pattern"
        and field
        and field.split(".")[0] in {"headline", "summary", "tags", "source", "byline"}
    ):
        return f"{field} must be plain text with a visible character and no control characters"
    if v == "pattern":
        return f"{field} has an invalid format"
    if v == "enum":
        return f"{field} must be one of {', '.join(map(str, error.validator_value))}"
    if v in {"maxLength", "minLength"}:
        bound = "most" if v == "maxLength" else "least"
        return f"{field} must be {error.validator_value} characters at {bound}"
    if v in {"minimum", "maximum"}:
        return (
            f"{field} must be {'at least' if v == 'minimum' else 'at most'} {error.validator_value}"
        )
    if v == "type":
        return f"{field or 'body'} must be of type {error.validator_value}"
    if v == "minProperties":
        return "the body must change at least one field"
    return f"{field or 'body'}: {error.message}"


def parse_time(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{field} must be an ISO 8601 date-time", field) from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{field} must include a time zone (e.g. Z)", field)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+14:00" is before year 1 in UTC
        utc = None
    # Later steps add durations and take timestamps: keep a year of room at both ends.
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValidationError(
            f"{field} must be between the years {MIN_YEAR} and {MAX_YEAR} (UTC)", field
        )
    return utc


def validate_item(data: Any, editions: Sequence[str], *, partial: bool = False) -> dict[str, Any]:
    """Validate a decoded JSON body; raise ValidationError naming the first bad field."""
    _check_depth(data)
    error = best_match(_validator(tuple(editions), partial).iter_errors(data))
    if error is not None:
        field = _field_of(error)
        raise ValidationError(_message(error, field), field)
    for name in ("expires_at", "embargoed_until"):
        if name in data:
            parse_time(data[name], name)
    texts = [(n, data[n]) for n in _PLAIN_FIELDS if n in data]
    texts += [(f"tags.{i}", t) for i, t in enumerate(data.get("tags", ()))]
    for name, text in texts:
        if not any(_visible(c) for c in text):
            raise ValidationError(f"{name} must have a visible character", name)
    return dict(data)


def _check_depth(data: Any) -> None:
    """Refuse values nested deeper than MAX_DEPTH, naming the top-level field (iteratively)."""
    stack: list[tuple[Any, int, str | None]] = [(data, 1, None)]
    while stack:
        value, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            raise ValidationError(
                f"{field or 'body'} is nested more than {MAX_DEPTH} levels deep", field or "body"
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1, field or str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, field) for v in value)


def _visible(ch: str) -> bool:
    return not ch.isspace() and category(ch) != "Cf"


def raise_first_error(validator: jsonschema.Draft202012Validator, data: Any) -> None:
    """Raise ValidationError naming the first bad field of ``data`` (for other schemas)."""
    error = best_match(validator.iter_errors(data))
    if error is not None:
        field = _field_of(error)
        raise ValidationError(_message(error, field), field)
