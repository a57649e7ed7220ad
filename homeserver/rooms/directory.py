"""The room directory, profiles and the user directory (with Japanese-aware search).

User directory search normalises both the query and the names (NFKC, case folding, no
spaces, katakana as hiragana) and also matches the kana reading of kanji names (pykakasi),
so 「山田太郎」, 「山田 太郎」 and 「やまだ」 all find 山田 太郎.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from federation.identifiers import is_valid_room_alias
from homeserver.common.errors import MatrixError, forbidden, not_found
from homeserver.rooms import profile_fields
from homeserver.rooms.ports import (
    Accounts,
    ProfileFields,
    RemoteDirectory,
    UserDirectoryFilter,
    UserDirectorySource,
)
from homeserver.rooms.service import RoomService
from homeserver.storage import accounts as account_store
from homeserver.storage import profiles as profile_store
from homeserver.storage import rooms as room_store

log = logging.getLogger(__name__)


def _to_hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _to_hiragana("".join(folded.split()))


@lru_cache(maxsize=100_000)
def reading(text: str) -> str:
    """The hiragana reading of ``text`` (kanji converted by pykakasi), normalised."""
    converter = _kakasi()
    return normalise("".join(item["hira"] for item in converter.convert(text)))


@lru_cache(maxsize=1)
def _kakasi() -> Any:
    import pykakasi

    return pykakasi.kakasi()  # type: ignore[no-untyped-call]


def matches(term: str, *names: str | None) -> bool:
    wanted = normalise(term)
    if not wanted:
        return False
    for name in names:
        if not name:
            continue
        if wanted in normalise(name) or wanted in reading(name):
            return True
    return False


class DirectoryService:
    def __init__(
        self,
        rooms: RoomService,
        accounts: Accounts,
        managed_fields: Iterable[str] = (),
        user_sources: Sequence[UserDirectorySource] = (),
        *,
        hidden: UserDirectoryFilter | None = None,
        feature_fields: ProfileFields | None = None,
        remote: RemoteDirectory | None = None,
    ) -> None:
        self.rooms = rooms
        self.accounts = accounts
        self.db = rooms.db
        #: The features' user directory sources, asked after the node's own users.
        self.user_sources = tuple(user_sources)
        #: Other servers' public room lists (None: without federation).
        self.remote = remote
        #: The features' filter of the user directory (partner accounts...), if any.
        self.hidden = hidden
        #: Profile fields features add as they read them (``feature_fields.fields``), and
        #: those they set (``set_managed_fields``): users may change neither.
        self.feature_fields = feature_fields
        protected = feature_fields.protected if feature_fields is not None else frozenset()
        self.managed_fields = frozenset(managed_fields) | protected

    # ------------------------------------------------------------- public rooms

    async def public_rooms(
        self, search: str, limit: int, since: Any, server: str | None = None
    ) -> dict[str, Any]:
        """The rooms published in this server's directory, or in ``server``'s."""
        if server is not None and server != self.rooms.server_name:
            if self.remote is None:
                raise MatrixError(400, "M_INVALID_PARAM", "Federation is not enabled")
            return await self.remote.public_rooms(
                server, search, limit, since if isinstance(since, str) else None
            )
        async with self.db.read() as conn:
            listed = await room_store.list_rooms(conn, public_only=True)
        chunk: list[dict[str, Any]] = []
        for room in listed:
            cache = await self.rooms.room(room.room_id)
            if cache is None:
                continue
            entry: dict[str, Any] = {
                "room_id": room.room_id,
                "num_joined_members": len(cache.joined()),
                "world_readable": (
                    await self.rooms.state_content(cache, "m.room.history_visibility")
                ).get("history_visibility")
                == "world_readable",
                "guest_can_join": (
                    await self.rooms.state_content(cache, "m.room.guest_access")
                ).get("guest_access")
                == "can_join",
                "join_rule": (await self.rooms.state_content(cache, "m.room.join_rules")).get(
                    "join_rule", "invite"
                ),
                "room_type": (await self.rooms.state_content(cache, "m.room.create")).get("type"),
            }
            for key, event_type, field in (
                ("name", "m.room.name", "name"),
                ("topic", "m.room.topic", "topic"),
                ("canonical_alias", "m.room.canonical_alias", "alias"),
                ("avatar_url", "m.room.avatar", "url"),
            ):
                value = (await self.rooms.state_content(cache, event_type)).get(field)
                if isinstance(value, str):
                    entry[key] = value
            entry = {k: v for k, v in entry.items() if v is not None}
            if search and not matches(
                search, entry.get("name"), entry.get("topic"), entry.get("canonical_alias")
            ):
                continue
            chunk.append(entry)
        chunk.sort(key=lambda e: (-e["num_joined_members"], e["room_id"]))
        start = 0
        if since is not None:
            if not isinstance(since, str) or not (since.isascii() and since.isdigit()):
                raise MatrixError(400, "M_INVALID_PARAM", "Invalid since token")
            start = int(since)
        limit = max(1, min(limit, 500))
        page = chunk[start : start + limit]
        response: dict[str, Any] = {"chunk": page, "total_room_count_estimate": len(chunk)}
        if start + limit < len(chunk):
            response["next_batch"] = str(start + limit)
        if start > 0:
            response["prev_batch"] = str(max(0, start - limit))
        return response

    async def visibility(self, room_id: str) -> str:
        """``public`` when the room is published in the directory, else ``private``."""
        async with self.db.read() as conn:
            room = await room_store.get_room(conn, room_id)
        if room is None:
            raise not_found("Unknown room")
        return "public" if room.is_public else "private"

    async def set_public(self, room_id: str, public: bool) -> None:
        async with self.db.write() as conn:
            await room_store.set_room_public(conn, room_id, public)

    # ------------------------------------------------------------- aliases

    async def room_for_alias(self, alias: str) -> str | None:
        async with self.db.read() as conn:
            return await room_store.get_alias(conn, alias)

    async def create_alias(self, user_id: str, alias: str, room_id: str) -> None:
        """A local alias for a room ``user_id`` is in (409 when it exists)."""
        if not is_valid_room_alias(alias):
            raise MatrixError(400, "M_INVALID_PARAM", "Invalid room alias")
        if not alias.startswith("#") or not alias.endswith(":" + self.rooms.server_name):
            raise MatrixError(400, "M_INVALID_PARAM", "Aliases must be local to this server")
        await self.rooms.require_joined(room_id, user_id)
        async with self.db.write() as conn:
            if await room_store.get_alias(conn, alias) is not None:
                raise MatrixError(409, "M_UNKNOWN", "Room alias already exists")
            await room_store.insert_alias(conn, alias, room_id, user_id)

    async def delete_alias(self, user_id: str, is_admin: bool, alias: str) -> None:
        """Only its creator (or an admin) may delete an alias."""
        async with self.db.write() as conn:
            creator = await room_store.alias_creator(conn, alias)
            if creator is None:
                raise not_found(f"Room alias {alias} not found")
            if creator != user_id and not is_admin:
                raise forbidden("You may only delete aliases you created")
            await room_store.delete_alias(conn, alias)

    async def aliases(self, user_id: str, room_id: str) -> list[str]:
        """The local aliases of a room ``user_id`` is in."""
        await self.rooms.require_joined(room_id, user_id)
        async with self.db.read() as conn:
            return await room_store.aliases_of_room(conn, room_id)

    # ------------------------------------------------------------- profiles

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        user = await self.accounts.get_user(user_id)
        if user is None or user.deactivated:
            raise not_found("Profile not found")
        async with self.db.read() as conn:
            profile: dict[str, Any] = await profile_store.get_fields(conn, user_id)
        if user.displayname is not None:
            profile["displayname"] = user.displayname
        if user.avatar_url is not None:
            profile["avatar_url"] = user.avatar_url
        if self.feature_fields is not None:
            profile.update(await self.feature_fields.fields(user_id))
        return profile

    def may_change(self, key: str) -> bool:
        """Whether users may set or delete ``key`` (not one the server manages)."""
        return key not in self.managed_fields

    async def set_profile_field(self, user_id: str, field: str, value: Any) -> None:
        """Set one of a user's profile fields as the user (or an admin) asks."""
        profile_fields.check_key(field)
        if not self.may_change(field):
            raise forbidden(f"{field} is managed by the server")
        profile_fields.check_value(field, value)
        await self._set_fields(user_id, {field: value})

    async def delete_profile_field(self, user_id: str, field: str) -> None:
        profile_fields.check_key(field)
        if not self.may_change(field):
            raise forbidden(f"{field} is managed by the server")
        if field in profile_fields.CORE_FIELDS:
            await self._set_fields(user_id, {field: None})
            return
        async with self.db.write() as conn:
            await profile_store.delete_field(conn, user_id, field)

    async def set_managed_fields(self, user_id: str, values: Mapping[str, Any]) -> None:
        """The server's own fields of a user (a feature's; None deletes one)."""
        for key in values:
            profile_fields.check_key(key)
        await self._set_fields(user_id, values)

    async def _set_fields(self, user_id: str, values: Mapping[str, Any]) -> None:
        profile = await self.get_profile(user_id)
        for key, value in values.items():
            if value is None and key not in profile_fields.CORE_FIELDS:
                profile.pop(key, None)
            else:
                profile[key] = value
        profile_fields.check_size(profile)
        async with self.db.write() as conn:
            for key, value in values.items():
                if key in profile_fields.CORE_FIELDS:
                    await account_store.update_user(conn, user_id, **{key: value})
                elif value is None:
                    await profile_store.delete_field(conn, user_id, key)
                else:
                    await profile_store.set_field(conn, user_id, key, value)
        for key, value in values.items():
            if key in profile_fields.CORE_FIELDS:
                await self._propagate(user_id, key, value)

    async def _propagate(self, user_id: str, field: str, value: Any) -> None:
        # Propagate to the member event of every joined room, as Synapse does.
        async with self.db.read() as conn:
            joined = await room_store.memberships_of_user(conn, user_id, ["join"])
        for membership in joined:
            room = await self.rooms.room(membership.room_id)
            if room is None:
                continue
            current = await self.rooms.state_content(room, "m.room.member", user_id)
            content = dict(current) if current else {"membership": "join"}
            if value is None:
                content.pop(field, None)
            else:
                content[field] = value
            try:
                await self.rooms.send(
                    room.room_id, user_id, "m.room.member", content, state_key=user_id
                )
            except MatrixError:
                continue  # e.g. no longer allowed in that room

    # ------------------------------------------------------------- user directory

    async def search_users(self, requester: str, term: str, limit: int) -> dict[str, Any]:
        term = term.strip()
        async with self.db.read() as conn:
            candidates = await account_store.list_users(conn, limit=100_000)
            shared_rooms = await room_store.memberships_of_user(conn, requester, ["join"])
        seen: dict[str, dict[str, Any]] = {}
        for user in candidates:
            if user.deactivated:
                continue
            localpart = user.user_id[1:].split(":", 1)[0]
            if matches(term, user.displayname, localpart, user.user_id):
                seen[user.user_id] = {
                    "user_id": user.user_id,
                    "display_name": user.displayname,
                    "avatar_url": user.avatar_url,
                }
        for membership in shared_rooms:
            room = await self.rooms.room(membership.room_id)
            if room is None:
                continue
            for member in room.joined():
                if member in seen or self.accounts.is_local(member):
                    continue
                content = await self.rooms.state_content(room, "m.room.member", member)
                name = content.get("displayname")
                if matches(term, name if isinstance(name, str) else None, member):
                    seen[member] = {
                        "user_id": member,
                        "display_name": name,
                        "avatar_url": content.get("avatar_url"),
                    }
        results = sorted(seen.values(), key=lambda r: r["user_id"])
        for source in self.user_sources:
            if len(results) > limit:
                break
            results.extend(await self._from_source(source, requester, term, limit, seen))
        if self.hidden is not None and results:
            # Asked last, so that what the sources found is filtered too.
            hidden = set(await self.hidden.hidden_users(requester, [r["user_id"] for r in results]))
            results = [r for r in results if r["user_id"] not in hidden]
        cleaned = [{k: v for k, v in r.items() if v is not None} for r in results[:limit]]
        return {"results": cleaned, "limited": len(results) > limit}

    async def _from_source(
        self,
        source: UserDirectorySource,
        requester: str,
        term: str,
        limit: int,
        seen: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """A feature's matches not found already (a failing source is logged, not fatal)."""
        try:
            found = await source.search_users(requester, term, limit)
        except Exception:
            log.exception("a user directory source failed")
            return []
        added = []
        for entry in found:
            user_id = entry.get("user_id")
            if not isinstance(user_id, str) or user_id in seen:
                continue
            seen[user_id] = {
                "user_id": user_id,
                "display_name": entry.get("display_name"),
                "avatar_url": entry.get("avatar_url"),
            }
            added.append(seen[user_id])
        return added
