"""The sample feature's pure rules: no I/O, so they are tested on their own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def blocked_word(content: Mapping[str, Any], words: Iterable[str]) -> str | None:
    """The first blocked word in a message's body (substring: Japanese has no spaces)."""
    body = content.get("body")
    if not isinstance(body, str):
        return None
    return next((w for w in words if w and w in body), None)


def localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]
