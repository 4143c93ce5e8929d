"""What an incoming A2A message says to the model: its parts rendered into one prompt.

The models behind agents read text, so every accepted part becomes text the model can follow:

- text parts as they are;
- data parts (JSON, typically an upstream step's artifact) as an indented JSON block (keys
  sorted, so equal inputs make equal prompts), labelled with the part's `metadata.name` or
  `filename` so the model can tell inputs apart;
- file parts with inline bytes of a textual media type (text/*, JSON, YAML) decoded as UTF-8,
  labelled with their file name.

Refused, before any task exists (`check_message`): an empty message, file parts by URL (the
agent does not fetch URLs: that would let a caller make it call internal services), binary
files, and bytes that are not UTF-8. The card declares the textual media types as input modes,
so the SDK already rejects a part whose declared media type is not one of them.
"""

from __future__ import annotations

import json
from typing import Any

from a2a.types import Message, Part
from google.protobuf import json_format

TEXT_MEDIA_TYPES = (
    "text/plain",
    "text/markdown",
    "text/csv",
    "text/html",
    "application/json",
    "application/yaml",
)


class InputError(ValueError):
    """A message the agent cannot take; `unsupported_type` marks a media type problem."""

    def __init__(self, message: str, unsupported_type: bool = False):
        super().__init__(message)
        self.unsupported_type = unsupported_type


def is_textual(media_type: str) -> bool:
    base = media_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in TEXT_MEDIA_TYPES or base.endswith("+json") or base.endswith("+yaml")


def plain(value: Any) -> Any:
    """A protobuf Value's JSON with integral numbers as ints again (protobuf keeps only doubles)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def part_name(part: Part) -> str | None:
    """The part's `metadata.name` (how callers name an upstream artifact or the run's input)."""
    if part.HasField("metadata"):
        name = part.metadata.fields.get("name")
        if name is not None and name.string_value:
            return name.string_value
    return None


def _label(part: Part, default: str) -> str:
    return part_name(part) or part.filename or default


def render_part(part: Part, index: int) -> str:
    kind = part.WhichOneof("content")
    if kind == "text":
        return part.text
    if kind == "data":
        value = plain(json_format.MessageToDict(part.data))
        label = _label(part, f"data {index + 1}")
        body = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)  # protobuf maps keep no order
        return f"Input {label!r} (JSON):\n```json\n{body}\n```"
    if kind == "raw":
        media_type = part.media_type or "text/plain"
        label = _label(part, f"file {index + 1}")
        if not is_textual(media_type):
            raise InputError(
                f"file {label!r} has media type {media_type}: this agent's model reads text only; send text, JSON or a file of one of {', '.join(TEXT_MEDIA_TYPES)}",
                unsupported_type=True,
            )
        try:
            content = part.raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"file {label!r} is not valid UTF-8 text: send it as UTF-8") from None
        return f"File {label!r} ({media_type}):\n```\n{content}\n```"
    if kind == "url":
        raise InputError(f"part {index + 1} refers to {part.url}: agents do not fetch URLs; send the content inline (as text, data or file bytes)")
    raise InputError(f"part {index + 1} is empty: every part needs text, data or file bytes")


def render_message(message: Message) -> str:
    """The prompt for one message; raises InputError for content the agent refuses."""
    if not message.parts:
        raise InputError("the message has no parts: send at least one text, data or file part")
    rendered = [render_part(part, index) for index, part in enumerate(message.parts)]
    text = "\n\n".join(item for item in rendered if item.strip())
    if not text.strip():
        raise InputError("the message is empty: send some text, data or a file")
    return text


def check_message(message: Message) -> None:
    render_message(message)
