"""Every table of the node, in one SQLAlchemy MetaData (the alembic migrations mirror it).

JSON is stored as text (canonical JSON for events).  Positions in the node's single stream
(events, receipts, account data, to-device messages, device list changes) come from one
in-process allocator, so a sync token is one integer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ---------------------------------------------------------------- accounts

users = Table(
    "users", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("password_hash", Text, nullable=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("deactivated", Boolean, nullable=False, default=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("displayname", Text, nullable=True),
    Column("avatar_url", Text, nullable=True),
    #: Account moderation (Matrix 1.12/1.13; the admin endpoints of 1.18).
    Column("locked", Boolean, nullable=False, default=False, server_default=false()),
    Column("suspended", Boolean, nullable=False, default=False, server_default=false()),
)  # fmt: skip

#: Extended profile fields (Matrix 1.16): every key but displayname and avatar_url (kept on
#: users), the value as JSON text.
profile_fields = Table(
    "profile_fields", metadata,
    Column("user_id", String(255), ForeignKey("users.user_id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)  # fmt: skip

devices = Table(
    "devices", metadata,
    Column("user_id", String(255), ForeignKey("users.user_id"), primary_key=True),
    Column("device_id", String(255), primary_key=True),
    Column("display_name", Text, nullable=True),
    Column("last_seen_ts", BigInteger, nullable=True),
    Column("last_seen_ip", String(64), nullable=True),
    #: The User-Agent of its last request (migration 0011).
    Column("last_seen_user_agent", Text, nullable=True),
)  # fmt: skip

access_tokens = Table(
    "access_tokens", metadata,
    Column("token_sha256", LargeBinary(32), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("device_id", String(255), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    #: When the token expires (tokens of clients that asked for a refresh token); None: never.
    Column("valid_until_ms", BigInteger, nullable=True),
    #: The refresh token issued with this token, if any.
    Column("refresh_token_sha256", LargeBinary(32), nullable=True, index=True),
    #: Whether the token was used once (the refresh token before it is then revoked).
    Column("used", Boolean, nullable=False, default=False, server_default=false()),
)  # fmt: skip

#: Refresh tokens (Matrix 1.3), hashed like access tokens.  ``next_token_sha256``: the refresh
#: token issued when this one was used; this one is revoked once that one's access token is used
#: or that one is refreshed in turn.
refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("token_sha256", LargeBinary(32), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("device_id", String(255), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("expiry_ts", BigInteger, nullable=True),
    Column("next_token_sha256", LargeBinary(32), nullable=True, index=True),
)  # fmt: skip

#: Short-lived ``m.login.token`` tokens from ``/login/get_token``, each usable once.
login_tokens = Table(
    "login_tokens", metadata,
    Column("token_sha256", LargeBinary(32), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("expiry_ts", BigInteger, nullable=False),
)  # fmt: skip

#: OpenID tokens (``/user/{userId}/openid/request_token``), which other servers (and the
#: widgets and integration managers behind them) exchange for the user's ID; hashed.
openid_tokens = Table(
    "openid_tokens", metadata,
    Column("token_sha256", LargeBinary(32), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("valid_until_ms", BigInteger, nullable=False, index=True),
)  # fmt: skip

registration_tokens = Table(
    "registration_tokens", metadata,
    Column("token", String(64), primary_key=True),
    Column("uses_allowed", Integer, nullable=True),
    Column("pending", Integer, nullable=False, default=0),
    Column("completed", Integer, nullable=False, default=0),
    Column("expiry_time", BigInteger, nullable=True),
)  # fmt: skip

# ---------------------------------------------------------------- rooms and events

rooms = Table(
    "rooms", metadata,
    Column("room_id", String(255), primary_key=True),
    Column("room_version", String(32), nullable=False),
    Column("creator", String(255), nullable=False),
    Column("is_public", Boolean, nullable=False, default=False),
    Column("created_ts", BigInteger, nullable=False),
)  # fmt: skip

events = Table(
    "events", metadata,
    Column("stream_ordering", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(255), nullable=False, unique=True),
    Column("room_id", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("state_key", String(255), nullable=True),
    Column("sender", String(255), nullable=False),
    Column("depth", BigInteger, nullable=False),
    Column("origin_server_ts", BigInteger, nullable=False),
    Column("json", Text, nullable=False),
    #: The state group after this event (None for outliers; for a rejected event, the state
    #: before it, which a rejected event does not change).
    Column("state_group", BigInteger, nullable=True),
    Column("outlier", Boolean, nullable=False, default=False),
    Column("rejected_reason", Text, nullable=True),
    Column("soft_failed", Boolean, nullable=False, default=False),
    #: Event ID of the redaction that redacted this event, once applied.
    Column("redacted_by", String(255), nullable=True),
    Index("ix_events_room_stream", "room_id", "stream_ordering"),
    #: timestamp_to_event (migration 0007).
    Index("ix_events_room_ts", "room_id", "origin_server_ts"),
)  # fmt: skip

event_edges = Table(
    "event_edges", metadata,
    Column("event_id", String(255), primary_key=True),
    Column("prev_event_id", String(255), primary_key=True),
    Index("ix_event_edges_prev", "prev_event_id"),
)  # fmt: skip

event_relations = Table(
    "event_relations", metadata,
    Column("event_id", String(255), primary_key=True),
    Column("relates_to_id", String(255), nullable=False, index=True),
    Column("relation_type", String(255), nullable=False),
)  # fmt: skip

#: Each room's threads (``m.thread`` relations): the root, and the stream position of its
#: latest accepted, unredacted reply, which orders ``/threads`` (Synapse's ``threads``).
threads = Table(
    "threads", metadata,
    Column("room_id", String(255), primary_key=True),
    Column("thread_id", String(255), primary_key=True),
    Column("latest_stream_ordering", BigInteger, nullable=False),
    Index("ix_threads_room_latest", "room_id", "latest_stream_ordering"),
)  # fmt: skip

#: Received redactions whose target event is not stored yet: applied when it arrives (if
#: the redaction's sender may redact it), as Synapse does when it serves such an event.
pending_redactions = Table(
    "pending_redactions", metadata,
    Column("target_id", String(255), primary_key=True),
    Column("redaction_id", String(255), primary_key=True),
    Column("room_id", String(255), nullable=False),
    Column("sender", String(255), nullable=False),
    #: The sender had the room's redact level (may redact anyone's events).
    Column("redacts_any", Boolean, nullable=False),
)  # fmt: skip

forward_extremities = Table(
    "forward_extremities", metadata,
    Column("room_id", String(255), primary_key=True),
    Column("event_id", String(255), primary_key=True),
)  # fmt: skip

#: Client transaction IDs of sent events, for idempotent retries and for
#: ``unsigned.transaction_id``.  A transaction is scoped to a device and an endpoint, so the
#: key is (user, device, request path, txn ID); ``txn_hash`` (sha256 of their canonical
#: JSON) indexes it, as the path and client-chosen ID are unbounded text.
event_txn_ids = Table(
    "event_txn_ids", metadata,
    Column("txn_hash", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("path", Text, nullable=False),
    Column("txn_id", Text, nullable=False),
    Column("event_id", String(255), nullable=False, index=True),
    #: Kept 24 hours (homeserver/node/housekeeping.py): indexed for the hourly deletion.
    Column("created_ts", BigInteger, nullable=False, index=True),
)  # fmt: skip

#: The full-text index of room events (``POST /search``; storage/search.py): one row per
#: indexed event.  The text is indexed per dialect, by structures SQLAlchemy cannot declare
#: (migration 0005 creates them; :func:`include_name` keeps them out of schema
#: comparisons): SQLite, the FTS5 table ``event_search_fts`` (rowid: the stream position);
#: PostgreSQL, the ``tsvector`` column ``vector`` here with the GIN index
#: ``ix_event_search_vector``.
event_search = Table(
    "event_search", metadata,
    Column("stream_ordering", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(255), nullable=False, index=True),
    Column("room_id", String(255), nullable=False),
    #: content.body, content.name or content.topic.
    Column("key", String(32), nullable=False),
)  # fmt: skip

#: What one dialect has that is not declared here (see ``event_search``).
DIALECT_ONLY_TABLE_PREFIX = "event_search_fts"
DIALECT_ONLY_COLUMNS = {("event_search", "vector")}
DIALECT_ONLY_INDEXES = {"ix_event_search_vector"}


def include_name(name: str | None, type_: str, parent_names: Mapping[Any, str | None]) -> bool:
    """Whether a schema comparison (alembic) looks at a name: not at the dialect-only
    structures of the search index."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(DIALECT_ONLY_TABLE_PREFIX)
    if type_ == "column":
        return (parent_names.get("table_name"), name) not in DIALECT_ONLY_COLUMNS
    if type_ == "index":
        return name not in DIALECT_ONLY_INDEXES
    return True


# ---------------------------------------------------------------- state

#: A state group is the state of a room at some point.  It is stored as a delta against
#: ``base_id``, an ancestor chosen by binary lifting over ``chain_depth`` (the depth with
#: its lowest set bit cleared), so any state is at most log2(depth) deltas away and all
#: deltas together stay O(changes * log changes) rows, never O(events * room size).
state_groups = Table(
    "state_groups", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("room_id", String(255), nullable=False),
    Column("parent_id", BigInteger, nullable=True),
    Column("base_id", BigInteger, nullable=True),
    Column("chain_depth", Integer, nullable=False),
)  # fmt: skip

state_group_deltas = Table(
    "state_group_deltas", metadata,
    Column("state_group", BigInteger, primary_key=True),
    Column("type", String(255), primary_key=True),
    Column("state_key", String(255), primary_key=True),
    #: None: the key is absent from this state (removed relative to the base).
    Column("event_id", String(255), nullable=True),
)  # fmt: skip

current_state = Table(
    "current_state", metadata,
    Column("room_id", String(255), primary_key=True),
    Column("type", String(255), primary_key=True),
    Column("state_key", String(255), primary_key=True),
    Column("event_id", String(255), nullable=False),
)  # fmt: skip

#: Every change of a room's current state, in stream order (None: the key was removed).
state_deltas = Table(
    "state_deltas", metadata,
    Column("stream_id", BigInteger, nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("state_key", String(255), nullable=False),
    Column("event_id", String(255), nullable=True),
    Index("ix_state_deltas_room_stream", "room_id", "stream_id"),
)  # fmt: skip

#: Each user's current membership of each room, with the stream position it took effect.
memberships = Table(
    "memberships", metadata,
    Column("room_id", String(255), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("membership", String(32), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
    Column("forgotten", Boolean, nullable=False, default=False),
    Index("ix_memberships_user", "user_id", "membership"),
)  # fmt: skip

room_aliases = Table(
    "room_aliases", metadata,
    Column("alias", String(255), primary_key=True),
    Column("room_id", String(255), nullable=False, index=True),
    Column("creator", String(255), nullable=False),
)  # fmt: skip

#: Reports of events, rooms and users by local users (``/report``), for the admins.
reports = Table(
    "reports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: "event", "room" or "user".
    Column("kind", String(16), nullable=False),
    Column("reporter", String(255), nullable=False),
    Column("room_id", String(255), nullable=True),
    Column("event_id", String(255), nullable=True),
    Column("target_user_id", String(255), nullable=True),
    Column("reason", Text, nullable=True),
    Column("score", Integer, nullable=True),
    Column("received_ts", BigInteger, nullable=False),
    Index("ix_reports_kind_received", "kind", "received_ts"),
)  # fmt: skip

# ---------------------------------------------------------------- per-user data

receipts = Table(
    "receipts", metadata,
    Column("room_id", String(255), primary_key=True),
    Column("receipt_type", String(64), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("thread_id", String(255), primary_key=True),
    Column("event_id", String(255), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("stream_id", BigInteger, nullable=False, index=True),
)  # fmt: skip

account_data = Table(
    "account_data", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("room_id", String(255), primary_key=True),  # "" for global account data
    Column("type", String(255), primary_key=True),
    Column("content", Text, nullable=False),
    Column("stream_id", BigInteger, nullable=False),
    Index("ix_account_data_user_stream", "user_id", "stream_id"),
)  # fmt: skip

#: The latest presence of each user (local and remote) the node knows, written only when
#: it changes in a way clients are told about (never on every /sync); ``stream_id`` is the
#: stream position of that change, for /sync's ``presence`` section.
presence = Table(
    "presence", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("status_msg", Text, nullable=True),
    Column("last_active_ts", BigInteger, nullable=False),
    Column("currently_active", Boolean, nullable=False),
    Column("stream_id", BigInteger, nullable=False, index=True),
)  # fmt: skip

filters = Table(
    "filters", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("filter_id", Integer, primary_key=True, autoincrement=False),
    Column("json", Text, nullable=False),
)  # fmt: skip

to_device = Table(
    "to_device", metadata,
    Column("stream_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("sender", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("content", Text, nullable=False),
    Index("ix_to_device_target", "user_id", "device_id", "stream_id"),
)  # fmt: skip

device_keys = Table(
    "device_keys", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("device_id", String(255), primary_key=True),
    Column("json", Text, nullable=False),
)  # fmt: skip

one_time_keys = Table(
    "one_time_keys", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("device_id", String(255), primary_key=True),
    Column("key_id", String(255), primary_key=True),  # "algorithm:id"
    Column("json", Text, nullable=False),
    Column("fallback", Boolean, nullable=False, default=False),
)  # fmt: skip

device_list_changes = Table(
    "device_list_changes", metadata,
    Column("stream_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(255), nullable=False, index=True),
)  # fmt: skip

push_rules = Table(
    "push_rules", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("json", Text, nullable=False),
)  # fmt: skip


def _push_action_columns() -> list[Column[Any]]:
    """A push action's columns; a read one (``read_push_actions``) has them too."""
    return [
        Column("user_id", String(255), primary_key=True),
        Column("room_id", String(255), primary_key=True),
        Column("stream_ordering", BigInteger, primary_key=True),
        Column("highlight", Boolean, nullable=False),
        #: The rule's actions (JSON) when they are more than ["notify"].
        Column("actions", Text, nullable=True),
        #: The thread the event is in: its root's event ID, or "main" (the main timeline).
        Column("thread_id", String(255), nullable=False, server_default="main"),
    ]


#: Push rule outcomes that notify a local user, one row per (event, user), written when
#: the event is persisted and moved to read_push_actions up to the user's read receipt in
#: the room.  One B-tree clustered by user (SQLite: WITHOUT ROWID), no other index: an
#: event in a room of 1,000 local members writes 1,000 rows, and every index would
#: multiply the pages each event dirties.  The event is the one at ``stream_ordering``.
event_push_actions = Table(
    "event_push_actions", metadata, *_push_action_columns(), sqlite_with_rowid=False
)

#: Push actions a read receipt took out of event_push_actions, kept a while for
#: GET /notifications (``read: true``); read_ts: when they were read.
read_push_actions = Table(
    "read_push_actions", metadata,
    *_push_action_columns(),
    Column("read_ts", BigInteger, nullable=False),
    Index("ix_read_push_actions_read_ts", "read_ts"),
    sqlite_with_rowid=False,
)  # fmt: skip

pushers = Table(
    "pushers", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("app_id", String(64), primary_key=True),
    Column("pushkey", String(512), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("app_display_name", Text, nullable=False),
    Column("device_display_name", Text, nullable=False),
    Column("profile_tag", Text, nullable=True),
    Column("lang", Text, nullable=False),
    Column("data", Text, nullable=False),
    #: The device whose access token set it: logging that device out deletes the pusher.
    Column("device_id", String(255), nullable=True),
    Column("pushkey_ts", BigInteger, nullable=False),
    #: Push actions up to this stream position have been sent (or given up on).
    Column("last_stream_ordering", BigInteger, nullable=False),
    Column("failing_since", BigInteger, nullable=True),
    Index("ix_pushers_app_pushkey", "app_id", "pushkey"),
)  # fmt: skip

media = Table(
    "media", metadata,
    Column("media_id", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("upload_name", Text, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    # Stored while enable_authenticated_media was on: not served by the frozen legacy
    # /_matrix/media/v3/download and /thumbnail (Synapse's local_media_repository column).
    Column("authenticated", Boolean, nullable=False),
)  # fmt: skip

# ---------------------------------------------------------------- federation

#: Other servers' signing keys, trusted for events up to ``valid_until_ts``.
server_keys = Table(
    "server_keys", metadata,
    Column("server_name", String(255), primary_key=True),
    Column("key_id", String(255), primary_key=True),
    Column("public_key", String(128), nullable=False),
    Column("valid_until_ts", BigInteger, nullable=False),
)  # fmt: skip

#: The outbound queue: every PDU and EDU for every destination until it is delivered.
federation_queue = Table(
    "federation_queue", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("destination", String(255), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_federation_queue_destination", "destination", "id"),
)  # fmt: skip

#: Transactions received, with the answer given, so a replay gets the same answer.
federation_inbound_txns = Table(
    "federation_inbound_txns", metadata,
    Column("origin", String(255), primary_key=True),
    Column("txn_id", String(255), primary_key=True),
    Column("response", Text, nullable=False),
    Column("received_ts", BigInteger, nullable=False),
)  # fmt: skip

# ---------------------------------------------------------------- end-to-end encryption: key backup

#: Server-side key backup versions of each user (``deleted`` ones keep their number taken).
e2e_room_keys_versions = Table(
    "e2e_room_keys_versions", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("algorithm", String(255), nullable=False),
    Column("auth_data", Text, nullable=False),
    Column("etag", BigInteger, nullable=False, default=0),
    Column("deleted", Boolean, nullable=False, default=False),
)  # fmt: skip

#: The encrypted room keys in a backup version, one per (room, megolm session).
e2e_room_keys = Table(
    "e2e_room_keys", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("room_id", String(255), primary_key=True),
    Column("session_id", String(255), primary_key=True),
    Column("first_message_index", BigInteger, nullable=False),
    Column("forwarded_count", BigInteger, nullable=False),
    Column("is_verified", Boolean, nullable=False),
    Column("session_data", Text, nullable=False),
)  # fmt: skip

# ---------------------------------------------------------------- federation: E2EE and media

#: Other servers' users' device lists, kept up to date by m.device_list_update EDUs:
#: ``json`` is ``{"devices": {device ID: {"keys": ..., "device_display_name": ...}},
#: "master_key": ..., "self_signing_key": ...}`` as of the user's ``stream_id``.
remote_device_lists = Table(
    "remote_device_lists", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("stream_id", BigInteger, nullable=False),
    Column("json", Text, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)  # fmt: skip

#: Other servers' media cached on disk (under ``remote_content/`` by ``file_id``).
#: ``last_access_ts`` (updated at most once a minute per media) orders eviction: least
#: recently used first when the cache is over its size, and purges by age.
remote_media = Table(
    "remote_media", metadata,
    Column("server_name", String(255), primary_key=True),
    Column("media_id", String(255), primary_key=True),
    Column("file_id", String(64), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("upload_name", Text, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("fetched_ts", BigInteger, nullable=False),
    Column("last_access_ts", BigInteger, nullable=False, index=True),
    Column("authenticated", Boolean, nullable=False),
)  # fmt: skip

# ------------------------------------------------------------------ sliding sync

#: Simplified Sliding Sync (MSC4186) connection positions: per (user, device, conn_id),
#: what the client was sent as of each position it may still send back as ``pos``.
sliding_sync_positions = Table(
    "sliding_sync_positions", metadata,
    Column("user_id", String(255), primary_key=True),
    Column("device_id", String(255), primary_key=True),
    Column("conn_id", String(255), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    #: JSON: the rooms sent and the room configs sent with them (sync/sliding/connections.py).
    Column("state", Text, nullable=False),
    Column("last_used_ts", BigInteger, nullable=False),
)  # fmt: skip
