"""The rules of profile fields (Matrix 1.16, MSC4133), pure.

A key is ``displayname``, ``avatar_url``, ``m.tz`` or a namespaced identifier
(``[a-z][a-z0-9_]*`` parts joined by dots, at least two), at most 255 bytes; a profile's
JSON is under 64 KiB.  Keys a node's features manage (the organisation directory's
``jp.kairan.*``) are set by the server only: users may not change or delete them, and the
``m.profile_fields`` capability lists them as ``disallowed``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from homeserver.common.errors import MatrixError

#: Kept on the user's account row and propagated to their member events.
CORE_FIELDS = ("displayname", "avatar_url")
MAX_KEY_BYTES = 255
MAX_PROFILE_BYTES = 64 * 1024
_KEY = re.compile(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")


def check_key(key: str) -> None:
    """400 ``M_KEY_TOO_LARGE`` or ``M_INVALID_PARAM`` for a key the spec does not allow."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MatrixError(400, "M_KEY_TOO_LARGE", f"Profile keys are at most {MAX_KEY_BYTES} bytes")
    if not _KEY.match(key):
        raise MatrixError(400, "M_INVALID_PARAM", "Invalid profile key")


def check_value(key: str, value: Any) -> None:
    """The spec's types for the keys it defines; any JSON for a custom key."""
    if key in ("displayname", "avatar_url", "m.tz") and not isinstance(value, str):
        if value is None and key in CORE_FIELDS:
            return  # a null display name or avatar clears it, as before 1.16
        raise MatrixError(400, "M_BAD_JSON", f"{key} must be a string")
    if value is None and key not in CORE_FIELDS:
        raise MatrixError(400, "M_BAD_JSON", "null values are not stored: use DELETE")
    if key == "displayname" and isinstance(value, str) and len(value) > 256:
        raise MatrixError(400, "M_TOO_LARGE", "displayname is longer than 256 characters")


def check_size(profile: Mapping[str, Any]) -> None:
    """400 ``M_PROFILE_TOO_LARGE`` when the profile's JSON would reach 64 KiB."""
    encoded = json.dumps(profile, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(encoded) >= MAX_PROFILE_BYTES:
        raise MatrixError(
            400, "M_PROFILE_TOO_LARGE", f"The profile would exceed {MAX_PROFILE_BYTES} bytes"
        )
