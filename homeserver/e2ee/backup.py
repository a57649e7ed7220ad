"""Server-side key backups (the ``/room_keys`` API): the server only stores what clients
encrypted; it never sees a room key."""

from __future__ import annotations

from typing import Any

from homeserver.common.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.storage import backup as store
from homeserver.storage.database import Database

ALGORITHMS = ("m.megolm_backup.v1.curve25519-aes-sha2",)
MAX_ID_LENGTH = 255


def parse_version(text: str | None) -> int:
    """A version as the API spells it (a decimal string); anything else names no backup."""
    if text is None:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing 'version'")
    if not text.isdigit() or len(text) > 18:
        raise not_found(f"Unknown backup version {text!r}")
    return int(text)


def _room_key(room_id: str, session_id: str, value: Any) -> store.RoomKey:
    if len(room_id) > MAX_ID_LENGTH or len(session_id) > MAX_ID_LENGTH:
        raise invalid_param("Room or session ID too long")
    if not isinstance(value, dict):
        raise bad_json("A backed-up key must be an object")
    numbers = [value.get("first_message_index"), value.get("forwarded_count")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise bad_json("first_message_index and forwarded_count must be non-negative integers")
    if not isinstance(value.get("is_verified"), bool):
        raise bad_json("is_verified must be a boolean")
    if not isinstance(value.get("session_data"), dict):
        raise bad_json("session_data must be an object")
    return store.RoomKey(
        room_id,
        session_id,
        value["first_message_index"],
        value["forwarded_count"],
        value["is_verified"],
        value["session_data"],
    )


def _better(new: store.RoomKey, old: store.RoomKey | None) -> bool:
    """Whether ``new`` should replace ``old`` (the spec's order of preference)."""
    if old is None:
        return True
    if new.is_verified != old.is_verified:
        return new.is_verified
    if new.first_message_index != old.first_message_index:
        return new.first_message_index < old.first_message_index
    return new.forwarded_count < old.forwarded_count


def _sessions(keys: list[store.RoomKey]) -> dict[str, dict[str, Any]]:
    rooms: dict[str, dict[str, Any]] = {}
    for key in keys:
        rooms.setdefault(key.room_id, {"sessions": {}})["sessions"][key.session_id] = key.to_json()
    return rooms


class BackupService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------- versions

    async def create_version(self, user_id: str, body: dict[str, Any]) -> str:
        algorithm, auth_data = self._check_version_body(body)
        async with self.db.write() as conn:
            return str(await store.create_version(conn, user_id, algorithm, auth_data))

    async def get_version(self, user_id: str, version: str | None) -> dict[str, Any]:
        async with self.db.read() as conn:
            if version is None:
                found = await store.current_version(conn, user_id)
                if found is None:
                    raise not_found("No current backup version")
            else:
                found = await _existing_version(conn, user_id, parse_version(version), version)
            count = await store.count_keys(conn, user_id, found.version)
        return {
            "algorithm": found.algorithm,
            "auth_data": found.auth_data,
            "count": count,
            "etag": str(found.etag),
            "version": str(found.version),
        }

    async def update_version(self, user_id: str, version: str, body: dict[str, Any]) -> None:
        number = parse_version(version)
        algorithm, auth_data = self._check_version_body(body)
        if "version" in body and body["version"] != version:
            raise invalid_param("The version in the body does not match the path")
        async with self.db.write() as conn:
            found = await _existing_version(conn, user_id, number, version)
            if found.algorithm != algorithm:
                raise invalid_param("Algorithm does not match")
            await store.update_version(conn, user_id, number, auth_data)

    async def delete_version(self, user_id: str, version: str) -> None:
        number = parse_version(version)
        async with self.db.write() as conn:
            await _existing_version(conn, user_id, number, version)
            await store.delete_version(conn, user_id, number)

    @staticmethod
    def _check_version_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        algorithm = body.get("algorithm")
        auth_data = body.get("auth_data")
        if algorithm is None or auth_data is None:
            raise MatrixError(400, "M_MISSING_PARAM", "'algorithm' and 'auth_data' are required")
        if not isinstance(algorithm, str) or not isinstance(auth_data, dict):
            raise bad_json("'algorithm' must be a string and 'auth_data' an object")
        if algorithm not in ALGORITHMS:
            raise invalid_param(f"Unsupported backup algorithm {algorithm!r}")
        return algorithm, auth_data

    # ------------------------------------------------------------- keys

    async def put_keys(
        self,
        user_id: str,
        version: str | None,
        body: dict[str, Any],
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Store keys; ``body`` is shaped by how much of the path was given."""
        if session_id is not None and room_id is not None:
            keys = [_room_key(room_id, session_id, body)]
        elif room_id is not None:
            keys = self._room_sessions(room_id, body)
        else:
            rooms = body.get("rooms")
            if not isinstance(rooms, dict):
                raise bad_json("'rooms' must be an object")
            keys = []
            for rid, room_body in rooms.items():
                if not isinstance(room_body, dict):
                    raise bad_json("Each room must be an object with 'sessions'")
                keys += self._room_sessions(rid, room_body)
        number = parse_version(version)
        async with self.db.write() as conn:
            current = await store.current_version(conn, user_id)
            if current is None:
                raise not_found("No current backup version")
            if current.version != number:
                raise MatrixError(
                    403,
                    "M_WRONG_ROOM_KEYS_VERSION",
                    "Wrong backup version.",
                    current_version=str(current.version),
                )
            changed = False
            for key in keys:
                existing = await store.get_keys(conn, user_id, number, key.room_id, key.session_id)
                if _better(key, existing[0] if existing else None):
                    await store.put_key(conn, user_id, number, key)
                    changed = True
            if changed:
                await store.bump_etag(conn, user_id, number)
            return await self._etag_count(conn, user_id, number)

    @staticmethod
    def _room_sessions(room_id: str, body: dict[str, Any]) -> list[store.RoomKey]:
        sessions = body.get("sessions")
        if not isinstance(sessions, dict):
            raise bad_json("'sessions' must be an object")
        return [_room_key(room_id, sid, value) for sid, value in sessions.items()]

    async def get_keys(
        self,
        user_id: str,
        version: str | None,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        number = parse_version(version)
        async with self.db.read() as conn:
            await _existing_version(conn, user_id, number, version)
            keys = await store.get_keys(conn, user_id, number, room_id, session_id)
        if session_id is not None:
            if not keys:
                raise not_found("No key for this session")
            return keys[0].to_json()
        rooms = _sessions(keys)
        if room_id is not None:
            return rooms.get(room_id, {"sessions": {}})
        return {"rooms": rooms}

    async def delete_keys(
        self,
        user_id: str,
        version: str | None,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        number = parse_version(version)
        async with self.db.write() as conn:
            await _existing_version(conn, user_id, number, version)
            await store.delete_keys(conn, user_id, number, room_id, session_id)
            await store.bump_etag(conn, user_id, number)
            return await self._etag_count(conn, user_id, number)

    @staticmethod
    async def _etag_count(conn: Any, user_id: str, version: int) -> dict[str, Any]:
        found = await store.get_version(conn, user_id, version)
        return {
            "etag": str(found.etag if found else 0),
            "count": await store.count_keys(conn, user_id, version),
        }


async def _existing_version(
    conn: Any, user_id: str, number: int, version: str | None
) -> store.BackupVersion:
    """The user's backup version ``number``; 404 when there is none."""
    found = await store.get_version(conn, user_id, number)
    if found is None:
        raise not_found(f"Unknown backup version {version}")
    return found
