"""Redaction algorithms: what of an event survives a redaction, per room version.

Rooms 10 use the algorithm of room 9 (top-level ``origin``, ``membership`` and
``prev_state`` survive); rooms 11 and 12 use the updated rules of MSC2176, MSC3821 and
MSC3989.  The result is what event IDs (reference hashes) and signatures are computed over.
"""

from __future__ import annotations

from typing import Any

from federation.room_versions import RoomVersion, get

_TOP_LEVEL_V11 = frozenset(
    {
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
    }
)  # fmt: skip
_TOP_LEVEL_V9 = _TOP_LEVEL_V11 | {"prev_state", "origin", "membership"}

_POWER_LEVEL_KEYS_V9 = frozenset(
    {"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}
)

_CONTENT_KEYS_V9: dict[str, frozenset[str]] = {
    "m.room.member": frozenset({"membership", "join_authorised_via_users_server"}),
    "m.room.create": frozenset({"creator"}),
    "m.room.join_rules": frozenset({"join_rule", "allow"}),
    "m.room.power_levels": _POWER_LEVEL_KEYS_V9,
    "m.room.history_visibility": frozenset({"history_visibility"}),
}
_CONTENT_KEYS_V11: dict[str, frozenset[str]] = {
    **_CONTENT_KEYS_V9,
    "m.room.power_levels": _POWER_LEVEL_KEYS_V9 | {"invite"},
    "m.room.redaction": frozenset({"redacts"}),
}


def _redacted_content(event_type: Any, content: Any, rules: RoomVersion) -> dict[str, Any]:
    if not isinstance(content, dict):
        return {}
    if rules.uses_v11_redaction:
        if event_type == "m.room.create":
            return dict(content)
        allowed = _CONTENT_KEYS_V11.get(event_type)
    else:
        allowed = _CONTENT_KEYS_V9.get(event_type)
    if not allowed:
        return {}
    kept = {k: v for k, v in content.items() if k in allowed}
    if rules.uses_v11_redaction and event_type == "m.room.member":
        invite = content.get("third_party_invite")
        if isinstance(invite, dict):
            # Synapse keeps the (possibly empty) object and only its ``signed`` key.
            kept["third_party_invite"] = {"signed": invite["signed"]} if "signed" in invite else {}
    return kept


def redact(pdu: dict[str, Any], room_version: str | RoomVersion) -> dict[str, Any]:
    """The redacted form of ``pdu`` under the rules of ``room_version`` (a new dict)."""
    rules = get(room_version)
    keep = _TOP_LEVEL_V11 if rules.uses_v11_redaction else _TOP_LEVEL_V9
    redacted = {k: v for k, v in pdu.items() if k in keep}
    redacted["content"] = _redacted_content(pdu.get("type"), pdu.get("content"), rules)
    return redacted
