"""The configuration's model: frozen dataclasses, :class:`Config` and one per section of
``kairan.yaml``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from federation.identifiers import split_server_name
from homeserver.config.listeners import FeatureSettings, Listener

DEFAULT_PORT = 8008
CONFIG_FILE = "kairan.yaml"


class ConfigError(Exception):
    """The configuration cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class Metrics:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``per_second`` sustained, bursts of ``burst``."""

    per_second: float = 10.0
    burst: int = 50


@dataclass(frozen=True)
class FederationSettings:
    enabled: bool = True
    #: Verify peers' TLS certificates (turning this off is logged loudly at start-up).
    verify_tls: bool = True
    #: Extra CA certificates (PEM) trusted for outbound federation, for closed networks.
    ca_file: Path | None = None
    #: Allow outbound federation to private, loopback and link-local addresses (SSRF guard).
    allow_private_addresses: bool = False
    #: server name -> "host:port" to connect to, bypassing .well-known and SRV.
    server_overrides: tuple[tuple[str, str], ...] = ()
    #: Notary servers asked for keys ({server_name, verify_keys}); none by default.
    trusted_key_servers: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    #: Closed federation: only with this node and the servers its features admit (the
    #: consortium feature: the members of its consortia).  Needs a feature that decides.
    closed: bool = False


@dataclass(frozen=True)
class RemoteMediaCache:
    """Other servers' media kept on disk: at most ``max_size`` bytes (least recently used
    files go first), and, with ``lifetime_ms``, nothing not accessed for that long
    (Synapse's ``media_retention.remote_media_lifetime``)."""

    max_size: int = 10 * 1024**3
    lifetime_ms: int | None = None


@dataclass(frozen=True)
class PasswordPolicy:
    """Rules for new passwords (registration, password changes, ``kairan user``), as
    Synapse's ``password_config.policy``; off by default.  Passwords longer than 512
    characters are refused whatever this says."""

    enabled: bool = False
    minimum_length: int = 0
    require_digit: bool = False
    require_symbol: bool = False
    require_lowercase: bool = False
    require_uppercase: bool = False


@dataclass(frozen=True)
class PushSettings:
    #: Allow push gateways on private, loopback and link-local addresses (SSRF guard: a
    #: user's pusher URL must not make the node probe the municipality's internal network).
    allow_private_addresses: bool = False
    #: Send the event's content to push gateways (unless the pusher asks for event_id_only).
    include_content: bool = True


@dataclass(frozen=True)
class PresenceSettings:
    """``presence``, as Synapse's section: on by default (large servers turn it off: then
    updates are accepted and ignored, /sync has none and no EDU is sent); its timers."""

    enabled: bool = True
    #: How long after the last activity a user counts as ``currently_active``.
    last_active_granularity_ms: int = 60 * 1000
    #: How long after the last /sync (none running) a user goes offline.
    sync_online_timeout_ms: int = 30 * 1000
    #: How long without activity before an online user becomes unavailable (idle).
    idle_timeout_ms: int = 5 * 60 * 1000


@dataclass(frozen=True)
class TurnSettings:
    """``turn``: the TURN servers clients are given for VoIP (``/voip/turnServer``), with
    coturn's ``use-auth-secret`` credentials (a shared secret) or a fixed user and password."""

    uris: tuple[str, ...] = ()
    shared_secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: How long the credentials given out are valid (Synapse's default: 1 hour).
    user_lifetime_ms: int = 60 * 60 * 1000


#: What URL previews never fetch unless ``url_preview.ip_range_allowlist`` lets them (the
#: ranges Synapse's sample config lists: private, loopback, link-local, CGNAT, multicast...).
DEFAULT_PREVIEW_DENYLIST = (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "192.0.0.0/24", "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "0.0.0.0/8", "240.0.0.0/4",
    "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10", "::/128",
)  # fmt: skip


@dataclass(frozen=True)
class UrlPreviewSettings:
    """``url_preview``: off by default.  When on, a URL is fetched only if every address
    it resolves to (at each redirect) is outside the denied ranges (the defaults above plus
    ``ip_range_denylist``) or inside ``ip_range_allowlist``."""

    enabled: bool = False
    ip_range_denylist: tuple[str, ...] = ()
    ip_range_allowlist: tuple[str, ...] = ()
    #: At most this much of a page is read (Synapse's ``max_spider_size``: 10M).
    max_size: int = 10 * 1024 * 1024
    #: A fetch (all redirects included) gives up after this long.
    timeout_ms: int = 10_000
    #: How long a preview is kept and served again.
    cache_ms: int = 60 * 60 * 1000


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``per_second`` sustained, bursts of ``burst_count``."""

    per_second: float
    burst_count: int


@dataclass(frozen=True)
class LoginLimits:
    """``rc_login``, as Synapse's (and its defaults: 0.17/s with bursts of 3 each): every
    ``/login`` per address, logins per account, wrong passwords per account."""

    address: Rate = field(default_factory=lambda: Rate(0.17, 3))
    account: Rate = field(default_factory=lambda: Rate(0.17, 3))
    failed_attempts: Rate = field(default_factory=lambda: Rate(0.17, 3))


#: ``rc_media_download`` by default: 20 a second, bursts of 200 (a client opening a room
#: asks for every avatar and image in view at once).
DEFAULT_MEDIA_DOWNLOAD_LIMIT = Rate(20.0, 200)


@dataclass(frozen=True)
class ThumbnailSize:
    """One of ``thumbnail_sizes``, as Synapse's: a thumbnail every image gets."""

    width: int
    height: int
    method: Literal["crop", "scale"]


#: Synapse's default ``thumbnail_sizes`` (the sizes the spec suggests).
DEFAULT_THUMBNAIL_SIZES = (
    ThumbnailSize(32, 32, "crop"),
    ThumbnailSize(96, 96, "crop"),
    ThumbnailSize(320, 240, "scale"),
    ThumbnailSize(640, 480, "scale"),
    ThumbnailSize(800, 600, "scale"),
)


@dataclass(frozen=True)
class Sessions:
    """Access token lifetimes and logging in with an existing session (Synapse's names)."""

    #: ``refreshable_access_token_lifetime``: the lifetime of the access tokens of clients
    #: that asked for a refresh token (Synapse's default, 5 minutes).
    refreshable_access_token_lifetime_ms: int = 5 * 60_000
    #: ``refresh_token_lifetime``: None, refresh tokens do not expire until used.
    refresh_token_lifetime_ms: int | None = None
    #: ``login_via_existing_session``: ``/login/get_token`` (off by default, as Synapse).
    login_token_enabled: bool = False
    login_token_require_ui_auth: bool = True
    login_token_timeout_ms: int = 5 * 60_000


@dataclass(frozen=True)
class SupportContact:
    role: str
    matrix_id: str | None = None
    email_address: str | None = None


@dataclass(frozen=True)
class WellKnown:
    """What ``/.well-known/matrix/server`` and ``/.well-known/matrix/support`` serve."""

    #: ``m.server``: the delegated federation endpoint (``host[:port]``); None: not served.
    server: str | None = None
    contacts: tuple[SupportContact, ...] = ()
    support_page: str | None = None


@dataclass(frozen=True)
class Config:
    server_name: str
    directory: Path
    listener: Listener
    database: str
    signing_key_path: Path
    media_path: Path
    max_upload_bytes: int = 50 * 1024 * 1024
    enable_registration: bool = False
    registration_requires_token: bool = True
    public_baseurl: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    login_limits: LoginLimits = field(default_factory=LoginLimits)
    #: Accounts with these localparts are admins (besides those flagged in the database).
    admins: tuple[str, ...] = ()
    federation: FederationSettings = field(default_factory=FederationSettings)
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    #: As Synapse's default: the frozen legacy /_matrix/media/v3/download and /thumbnail
    #: serve only media stored while this was off.
    enable_authenticated_media: bool = True
    remote_media_cache: RemoteMediaCache = field(default_factory=RemoteMediaCache)
    #: The thumbnails every image gets; a request is answered with the best of them.
    thumbnail_sizes: tuple[ThumbnailSize, ...] = DEFAULT_THUMBNAIL_SIZES
    #: Thumbnails of exactly the requested size instead (Synapse's ``dynamic_thumbnails``).
    dynamic_thumbnails: bool = False
    #: ``rc_media_download``: media downloads and thumbnails per user (per address on the
    #: unauthenticated endpoints, per server over federation).
    media_download_limit: Rate = DEFAULT_MEDIA_DOWNLOAD_LIMIT
    push: PushSettings = field(default_factory=PushSettings)
    presence: PresenceSettings = field(default_factory=PresenceSettings)
    turn: TurnSettings = field(default_factory=TurnSettings)
    url_preview: UrlPreviewSettings = field(default_factory=UrlPreviewSettings)
    #: Every listener (the first is ``listener``); see homeserver/config/listeners.py.
    listeners: tuple[Listener, ...] = ()
    #: The features the node enables, in order, with their settings (``features:``).
    features: tuple[FeatureSettings, ...] = ()
    sessions: Sessions = field(default_factory=Sessions)
    well_known: WellKnown = field(default_factory=WellKnown)
    #: Extra settings for tests, never written by ``kairan init``.
    testing: bool = False

    @property
    def every_listener(self) -> tuple[Listener, ...]:
        return self.listeners or (self.listener,)

    @property
    def base_url(self) -> str:
        if self.public_baseurl:
            return self.public_baseurl.rstrip("/")
        scheme = "https" if self.listener.tls_certificate else "http"
        return f"{scheme}://{self.server_name}"


def default_listener(server_name: str) -> Listener:
    """The listener a server name implies: its port (8008 without one), its host when local."""
    host, port = split_server_name(server_name)
    bind = host.strip("[]")
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        bind = "127.0.0.1" if bind == "localhost" else "0.0.0.0"
    return Listener(bind, port or DEFAULT_PORT)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
