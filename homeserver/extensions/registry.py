"""Where features register what they plug in, and what the core is built with.

A feature's ``register(registry, context)`` adds its policies, hooks, routes and
migrations to a :class:`Registry`; the composition root then freezes it into
:class:`Extensions` and hands each core service the part it uses.  Nothing is added after
the node is built.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from homeserver.accounts.checks import ClientInfo, LoginAttempt, LoginCheck
from homeserver.accounts.requester import Requester
from homeserver.extensions.points import (
    EventListener,
    EventPolicy,
    PeerPolicy,
    PinnedKeys,
    ProfileFields,
    ProposedEvent,
    SyncExtension,
    UploadFilter,
    UserDirectoryFilter,
    UserDirectorySource,
)
from homeserver.media.filters import UploadFilterChain

log = logging.getLogger(__name__)

#: Where a feature's own HTTP endpoints live (namespaced, as MSCs do for unstable APIs).
CLIENT_PREFIX = "/_matrix/client/unstable/jp.kairan/"
FEDERATION_PREFIX = "/_matrix/federation/unstable/jp.kairan/"
ADMIN_PREFIX = "/_kairan/admin/v1/"

#: An admin endpoint: the request and the (admin) user making it.
AdminHandler = Callable[[web.Request, Requester], Awaitable[web.StreamResponse]]
#: A federation endpoint: the request, the verified origin server and the parsed body.
FederationHandler = Callable[[web.Request, str, Any], Awaitable[web.StreamResponse]]


class RegistrationError(Exception):
    """A feature registered something the node cannot take (a route outside its prefix...)."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Migrations:
    """A feature's own alembic migrations, kept in a version table of their own."""

    feature: str
    script_location: Path

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.feature}"


@dataclass(frozen=True)
class ZonedMiddleware:
    middleware: Middleware
    #: The listener zones it applies to; empty: every listener.
    zones: frozenset[str] = frozenset()

    def applies_to(self, zone: str) -> bool:
        return not self.zones or zone in self.zones


class EventPolicies(EventPolicy):
    """Every registered :class:`EventPolicy`, asked in registration order; the first
    refusal wins."""

    def __init__(self, policies: Sequence[EventPolicy] = ()) -> None:
        self.policies = tuple(policies)

    def __bool__(self) -> bool:
        return bool(self.policies)

    async def check_event(self, event: ProposedEvent) -> None:
        for policy in self.policies:
            await policy.check_event(event)

    async def user_may_create_room(self, user_id: str, request: Mapping[str, Any]) -> None:
        for policy in self.policies:
            await policy.user_may_create_room(user_id, request)

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> None:
        for policy in self.policies:
            await policy.user_may_invite(inviter, invitee, room_id)

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> None:
        for policy in self.policies:
            await policy.user_may_join_room(user_id, room_id, is_invited)

    async def user_may_join_via(self, user_id: str, room_id: str, servers: Sequence[str]) -> None:
        for policy in self.policies:
            await policy.user_may_join_via(user_id, room_id, servers)

    async def user_may_peek(self, user_id: str, room_id: str) -> None:
        for policy in self.policies:
            await policy.user_may_peek(user_id, room_id)


class PeerPolicies:
    """Every registered :class:`PeerPolicy`: a server is allowed when all allow it."""

    def __init__(self, policies: Sequence[PeerPolicy] = ()) -> None:
        self.policies = tuple(policies)

    def __bool__(self) -> bool:
        return bool(self.policies)

    def inbound(self, origin: str) -> str | None:
        for policy in self.policies:
            reason = policy.inbound(origin)
            if reason is not None:
                return reason
        return None

    def outbound(self, destination: str) -> str | None:
        for policy in self.policies:
            reason = policy.outbound(destination)
            if reason is not None:
                return reason
        return None


class KeyPins:
    """Every registered :class:`~federation.ports.PinnedKeys`: the first that pins a
    server decides its keys."""

    def __init__(self, pins: Sequence[PinnedKeys] = ()) -> None:
        self.pins = tuple(pins)

    def __bool__(self) -> bool:
        return bool(self.pins)

    def pinned(self, server: str) -> Mapping[str, str] | None:
        for source in self.pins:
            keys = source.pinned(server)
            if keys is not None:
                return keys
        return None


class LoginChecks(LoginCheck):
    def __init__(self, checks: Sequence[LoginCheck] = ()) -> None:
        self.checks = tuple(checks)

    def __bool__(self) -> bool:
        return bool(self.checks)

    async def check_login(self, attempt: LoginAttempt) -> None:
        for check in self.checks:
            await check.check_login(attempt)

    async def logged_in(self, requester: Requester, attempt: LoginAttempt) -> None:
        for check in self.checks:
            await check.logged_in(requester, attempt)

    async def check_access(self, requester: Requester, client: ClientInfo) -> None:
        for check in self.checks:
            await check.check_access(requester, client)


class DirectoryFilters:
    """Every registered :class:`UserDirectoryFilter`: a user is hidden when one hides it."""

    def __init__(self, filters: Sequence[UserDirectoryFilter] = ()) -> None:
        self.filters = tuple(filters)

    def __bool__(self) -> bool:
        return bool(self.filters)

    async def hidden_users(self, searcher: str, user_ids: Collection[str]) -> Collection[str]:
        hidden: set[str] = set()
        for directory_filter in self.filters:
            hidden.update(await directory_filter.hidden_users(searcher, user_ids))
        return hidden


class ProfileFieldSources:
    """Every registered :class:`ProfileFields`, their fields merged in registration order."""

    def __init__(self, sources: Sequence[ProfileFields] = ()) -> None:
        self.sources = tuple(sources)
        self.protected = frozenset(k for s in self.sources for k in s.protected)

    def __bool__(self) -> bool:
        return bool(self.sources)

    async def fields(self, user_id: str) -> Mapping[str, Any]:
        merged: dict[str, Any] = {}
        for source in self.sources:
            merged.update(await source.fields(user_id))
        return merged


@dataclass(frozen=True)
class Extensions:
    """What the features of a node plugged in, frozen; each core service gets its part."""

    features: tuple[str, ...] = ()
    event_policy: EventPolicies = field(default_factory=EventPolicies)
    peer_policy: PeerPolicies = field(default_factory=PeerPolicies)
    key_pins: KeyPins = field(default_factory=KeyPins)
    event_listeners: tuple[EventListener, ...] = ()
    sync_extensions: tuple[SyncExtension, ...] = ()
    upload_filters: UploadFilterChain = field(default_factory=UploadFilterChain)
    login_checks: LoginChecks = field(default_factory=LoginChecks)
    directory_filters: DirectoryFilters = field(default_factory=DirectoryFilters)
    profile_fields: ProfileFieldSources = field(default_factory=ProfileFieldSources)
    middleware: tuple[ZonedMiddleware, ...] = ()
    client_routes: tuple[Route, ...] = ()
    federation_routes: tuple[Route, ...] = ()
    admin_routes: tuple[Route, ...] = ()
    migrations: tuple[Migrations, ...] = ()
    #: More users for /user_directory/search, asked after the node's own.
    user_directory_sources: tuple[UserDirectorySource, ...] = ()
    #: Profile fields the features set and users may not change (m.profile_fields).
    managed_profile_fields: frozenset[str] = frozenset()
    #: Run once the node is built, before it listens (given the node's API); then at stop.
    on_start: tuple[Callable[[Any], Awaitable[None]], ...] = ()
    on_stop: tuple[Callable[[], Awaitable[None]], ...] = ()
    #: What features offer each other by name (``Registry.provide``).
    provided: Mapping[str, Any] = field(default_factory=dict)

    def middleware_for(self, zone: str) -> list[Middleware]:
        return [m.middleware for m in self.middleware if m.applies_to(zone)]


NO_EXTENSIONS = Extensions()


class Registry:
    """Collects what features plug in.  Used only while a node is being built."""

    def __init__(self) -> None:
        self._features: list[str] = []
        self._event_policies: list[EventPolicy] = []
        self._peer_policies: list[PeerPolicy] = []
        self._pins: list[PinnedKeys] = []
        self._provided: dict[str, Any] = {}
        self._listeners: list[EventListener] = []
        self._sync: list[SyncExtension] = []
        self._uploads: list[UploadFilter] = []
        self._logins: list[LoginCheck] = []
        self._directory: list[UserDirectoryFilter] = []
        self._profile: list[ProfileFields] = []
        self._middleware: list[ZonedMiddleware] = []
        self._client: list[Route] = []
        self._federation: list[Route] = []
        self._admin: list[Route] = []
        self._migrations: list[Migrations] = []
        self._start: list[Callable[[Any], Awaitable[None]]] = []
        self._stop: list[Callable[[], Awaitable[None]]] = []
        self._profile_fields: set[str] = set()
        self._user_sources: list[UserDirectorySource] = []
        self._current: str | None = None

    # ------------------------------------------------------------- features

    def begin(self, feature: str) -> None:
        """The feature whose ``register`` runs next (names its migrations and errors)."""
        if feature in self._features:
            raise RegistrationError(f"feature {feature!r} is enabled twice")
        self._features.append(feature)
        self._current = feature

    # ------------------------------------------------------------- policies and hooks

    def add_event_policy(self, policy: EventPolicy) -> None:
        self._event_policies.append(policy)

    def add_peer_policy(self, policy: PeerPolicy) -> None:
        self._peer_policies.append(policy)

    def add_key_pins(self, pins: PinnedKeys) -> None:
        """Servers whose keys the feature pins: only those keys verify them, none fetched."""
        self._pins.append(pins)

    def add_event_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def add_sync_extension(self, extension: SyncExtension) -> None:
        self._sync.append(extension)

    def add_upload_filter(self, upload_filter: UploadFilter) -> None:
        self._uploads.append(upload_filter)

    def add_login_check(self, check: LoginCheck) -> None:
        self._logins.append(check)

    def add_directory_filter(self, directory_filter: UserDirectoryFilter) -> None:
        """Users kept out of ``/user_directory/search`` results."""
        self._directory.append(directory_filter)

    def add_profile_fields(self, source: ProfileFields) -> None:
        """Fields added to local users' profiles, which the profile endpoints refuse to
        change (``source.protected``)."""
        self._profile.append(source)

    def add_middleware(self, middleware: Middleware, zones: Iterable[str] = ()) -> None:
        """aiohttp middleware on the listeners of ``zones`` (all listeners when empty)."""
        self._middleware.append(ZonedMiddleware(middleware, frozenset(zones)))

    def add_user_directory_source(self, source: UserDirectorySource) -> None:
        """More users for ``/user_directory/search``: ``source.search_users(requester,
        term, limit)`` is asked after the node's own users, so clients (Element) find them."""
        self._user_sources.append(source)

    def add_managed_profile_fields(self, keys: Iterable[str]) -> None:
        """Profile fields (Matrix 1.16) the feature sets through ``NodeApi`` and users may
        not set or delete (403; listed as ``disallowed`` in ``m.profile_fields``)."""
        for key in keys:
            if key in ("displayname", "avatar_url") or "." not in key:
                raise RegistrationError(f"{key!r} is not a namespaced profile field")
            self._profile_fields.add(key)

    def on_start(self, callback: Callable[[Any], Awaitable[None]]) -> None:
        """``callback(node)`` runs once the node is built, before it listens; ``node`` is
        its :class:`~homeserver.node.api.NodeApi` (services a feature may use)."""
        self._start.append(callback)

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._stop.append(callback)

    # ------------------------------------------------------------- between features

    def provide(self, name: str, obj: Any) -> None:
        """Offer ``obj`` to the features registered after this one (``provided(name)``)
        and to every feature once the node runs (``NodeApi.provided(name)``).  A name is
        the providing feature's, dotted (``consortium.service``)."""
        if name in self._provided:
            raise RegistrationError(f"{name!r} is provided already")
        self._provided[name] = obj

    def provided(self, name: str) -> Any | None:
        """What an earlier feature provided under ``name``, or None."""
        return self._provided.get(name)

    # ------------------------------------------------------------- routes

    def add_client_route(
        self,
        method: str,
        path: str,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> None:
        """A Client-Server endpoint under ``/_matrix/client/unstable/jp.kairan/``; the
        handler authenticates with ``homeserver.client_api.common.requester`` if it needs."""
        self._client.append(Route(method, _under(path, CLIENT_PREFIX), handler))

    def add_federation_route(self, method: str, path: str, handler: FederationHandler) -> None:
        """A federation endpoint under ``/_matrix/federation/unstable/jp.kairan/``: the node
        verifies the X-Matrix signature and asks the peer policy before ``handler`` runs."""
        self._federation.append(Route(method, _under(path, FEDERATION_PREFIX), handler))

    def add_admin_route(self, method: str, path: str, handler: AdminHandler) -> None:
        """An admin API endpoint under ``/_kairan/admin/v1/``: only server admins reach
        ``handler``."""
        self._admin.append(Route(method, _under(path, ADMIN_PREFIX), handler))

    # ------------------------------------------------------------- storage

    def add_migrations(self, script_location: Path) -> None:
        """The feature's own alembic migrations (a folder with ``env.py`` and
        ``versions/``), run at start-up after the core's, in a version table of their own."""
        if self._current is None:
            raise RegistrationError("migrations must be registered by a feature")
        if not (script_location / "env.py").is_file():
            raise RegistrationError(f"{script_location} has no env.py")
        self._migrations.append(Migrations(self._current, script_location))

    # ------------------------------------------------------------- the result

    def freeze(self) -> Extensions:
        return Extensions(
            features=tuple(self._features),
            event_policy=EventPolicies(self._event_policies),
            peer_policy=PeerPolicies(self._peer_policies),
            key_pins=KeyPins(self._pins),
            event_listeners=tuple(self._listeners),
            sync_extensions=tuple(self._sync),
            upload_filters=UploadFilterChain(self._uploads),
            login_checks=LoginChecks(self._logins),
            directory_filters=DirectoryFilters(self._directory),
            profile_fields=ProfileFieldSources(self._profile),
            middleware=tuple(self._middleware),
            client_routes=tuple(self._client),
            federation_routes=tuple(self._federation),
            admin_routes=tuple(self._admin),
            migrations=tuple(self._migrations),
            user_directory_sources=tuple(self._user_sources),
            managed_profile_fields=frozenset(self._profile_fields),
            on_start=tuple(self._start),
            on_stop=tuple(self._stop),
            provided=dict(self._provided),
        )


def _under(path: str, prefix: str) -> str:
    if not path.startswith(prefix) or ".." in path.split("/"):
        raise RegistrationError(f"{path} is not under {prefix}")
    return path
