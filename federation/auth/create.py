"""Rule 1 (``m.room.create``) and, in room 12, rule 2 (room ID derived from the create event)."""

from __future__ import annotations

from typing import Any

from federation.auth._util import create_event_of, require_content
from federation.auth.power import is_valid_creator_id
from federation.errors import AuthError, FederationError
from federation.identifiers import InvalidIdentifier, domain_of
from federation.room_versions import RoomVersion

#: Room versions a create event's ``content.room_version`` may name (rule 1.3): the
#: versions the spec defines, whether or not this server implements them, plus the
#: experimental identifiers Synapse knows (it accepts them here, so we must too).
RECOGNISED_ROOM_VERSIONS = frozenset(str(n) for n in range(1, 13)) | {
    "org.matrix.msc3389.10",
    "org.matrix.msc1767.10",
    "org.matrix.msc3757.10",
    "org.matrix.msc3757.11",
    "org.matrix.hydra.11",
    "org.matrix.msc4242.12",
}


def check_create(pdu: dict[str, Any], rv: RoomVersion) -> None:
    """Rules 1.1-1.5 for an ``m.room.create`` event; returns if allowed."""
    prev_events = pdu.get("prev_events", [])
    if not isinstance(prev_events, list) or prev_events:
        raise AuthError("the create event has prev_events", "1.1")

    if rv.room_id_is_create_hash:
        if "room_id" in pdu:
            raise AuthError("the create event must not have a room_id in this room version", "1.2")
    else:
        try:
            same = domain_of(pdu.get("room_id")) == domain_of(pdu["sender"])  # type: ignore[arg-type]
        except InvalidIdentifier:
            same = False
        if not same:
            raise AuthError("the domain of the room_id does not match the sender's domain", "1.2")

    content = require_content(pdu)
    version = content.get("room_version", "1")
    if not isinstance(version, str) or version not in RECOGNISED_ROOM_VERSIONS:
        raise AuthError(f"content.room_version {version!r} is not a recognised version", "1.3")

    if rv.create_has_creator and "creator" not in content:
        raise AuthError("the create event's content has no creator property", "1.4")

    if rv.creators_have_infinite_power and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list):
            raise AuthError("content.additional_creators is not an array", "1.4")
        for entry in extra:
            if not is_valid_creator_id(entry):
                raise AuthError(
                    f"content.additional_creators holds an invalid user ID: {entry!r}", "1.4"
                )


def check_room_id_derivation(
    pdu: dict[str, Any], auth_state: dict[Any, Any], rv: RoomVersion
) -> None:
    """Room 12 rule 2: ``room_id`` must be ``!`` + the create event's reference hash.

    Whether the create event was itself rejected is the caller's concern (see
    :func:`federation.auth.build_auth_state`).
    """
    from federation.events import compute_room_id

    create = create_event_of(auth_state, rv)
    if create.get("type") != "m.room.create":
        raise AuthError("the create event of the auth state is not of type m.room.create", "2")
    try:
        expected = compute_room_id(create)
    except FederationError as e:
        raise AuthError(f"cannot derive the room ID from the create event: {e}", "2") from e
    if pdu.get("room_id") != expected:
        raise AuthError(
            f"room_id {pdu.get('room_id')!r} is not derived from the create event "
            f"(expected {expected!r})",
            "2",
        )


def create_event_id(create: dict[str, Any], room_id: object, rv: RoomVersion) -> str | None:
    """The event ID of ``create`` (``None`` if it cannot be computed).

    Room 12: ``$`` + the room ID's hash (rule 2 has checked the derivation); earlier
    rooms: the reference hash computed by :mod:`federation.events`.
    """
    if rv.room_id_is_create_hash:
        if isinstance(room_id, str) and room_id.startswith("!"):
            return "$" + room_id[1:]
        return None
    from federation.events import compute_event_id

    try:
        return compute_event_id(create, rv.identifier)
    except FederationError:
        return None
