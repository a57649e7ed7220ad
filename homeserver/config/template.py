"""The commented ``kairan.yaml`` that ``kairan init`` writes (:func:`render_config`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from federation.identifiers import split_server_name
from homeserver.config.model import default_listener, sqlite_url

TEMPLATE = """\
# Kairan node configuration.  Paths are relative to this file's directory.

# The name other servers and users know this node by; user IDs end in it
# (@yamada:{server_name}).  It cannot change once users and rooms exist.
server_name: "{server_name}"

# Where the node listens.  By default: the host and port of the server name,
# or port 8008 when the name has none.
listen:
  host: "{host}"
  port: {port}

# Several listeners, each in a network zone (features attach middleware per zone, e.g. IP
# limits on the internet side) and serving some of: client (Client-Server API and media),
# federation, admin.  A listener takes what it does not say from listen: and tls:.
# listeners:
#   - zone: lgwan
#     port: 8008
#   - zone: internet
#     host: "0.0.0.0"
#     port: 8448
#     resources: [client]

# Storage.  Default: an embedded SQLite file.  For production use PostgreSQL:
#   database: "postgresql+asyncpg://kairan@127.0.0.1/kairan"
database: "{database}"

# The ed25519 key that signs this node's events (keep it secret and backed up).
signing_key_path: "signing.key"

# Uploaded files and their thumbnails.
media_path: "media"
max_upload_size: "50M"

# Thumbnails, as Synapse's thumbnail_sizes (these are its defaults, the sizes the spec
# suggests): every image gets one thumbnail of each size, made all at once (in a worker
# process) at the first request for a thumbnail of it and then kept, and a request of any
# size is answered with the best of them.  "crop" fills the size, trimming the image;
# "scale" fits the whole image inside it.  No thumbnail is larger than its image.
thumbnail_sizes:
  - {{width: 32, height: 32, method: crop}}
  - {{width: 96, height: 96, method: crop}}
  - {{width: 320, height: 240, method: scale}}
  - {{width: 640, height: 480, method: scale}}
  - {{width: 800, height: 600, method: scale}}
# true: a thumbnail of exactly the requested size instead, each new size decoding the image
# again (at most 32 kept per media).  Off by default, as Synapse.
dynamic_thumbnails: false

# The unauthenticated /_matrix/media/v3/download and /thumbnail endpoints were frozen by
# Matrix 1.11.  true (the default, as Synapse): they serve only media stored while this was
# false, and answer 404 M_NOT_FOUND for the rest, which clients fetch from the
# authenticated /_matrix/client/v1/media endpoints.  false: they serve all media.
enable_authenticated_media: true

# Other servers' media, cached here once a user has downloaded it.
remote_media_cache:
  # Beyond this size the least recently used files are removed (fetched again on demand).
  max_size: "10G"
  # Also remove media nobody has accessed for this long (e.g. 90d; off by default).
  # lifetime: "90d"

# Open registration: anyone who can reach the node can create an account.
# Off by default; registration tokens (admin API) work either way.
enable_registration: {enable_registration}
registration_requires_token: {requires_token}
{tls}
# Prometheus metrics on a separate listener (off by default).
metrics:
  enabled: false
  host: "127.0.0.1"
  port: 9108

# Requests per second per user (or per IP when not logged in), and the burst allowed.
rate_limit:
  per_second: 10
  burst: 50

# Limits on guessing passwords, as Synapse's rc_login (these are its defaults): every
# /login per address, successful logins per account, wrong passwords per account (also
# at the password step of re-authentication).  Over them: 429 before any password hash.
rc_login:
  address: {{per_second: 0.17, burst_count: 3}}
  account: {{per_second: 0.17, burst_count: 3}}
  failed_attempts: {{per_second: 0.17, burst_count: 3}}

# Media downloads and thumbnails per user (per address on the unauthenticated
# /_matrix/media/v3 endpoints, per server over federation): per second, and the burst
# allowed (a client opening a room asks for every avatar and image in view at once).
# Over it: 429 M_LIMIT_EXCEEDED with retry_after_ms.  Kairan's own; Synapse has none.
rc_media_download:
  per_second: 20
  burst_count: 200

# Localparts of accounts that may use the admin API.
admins: []

# Rules for new passwords (registration, password changes, "kairan user add" and
# "reset-password"); a password that breaks one is refused with M_WEAK_PASSWORD.
# Off by default.  Passwords longer than 512 characters are always refused.
# "symbol" is any character but A-Z, a-z and 0-9 (so kana and kanji count as symbols).
password_policy:
  enabled: false
  minimum_length: 0
  require_digit: false
  require_symbol: false
  require_lowercase: false
  require_uppercase: false

# Sessions (Synapse's names and defaults).  Clients that ask for a refresh token get
# access tokens living this long; the others get tokens that never expire.
refreshable_access_token_lifetime: 5m
# refresh_token_lifetime: 30d        # unset: refresh tokens last until used
# /login/get_token: one-use login tokens for signing in another device (off by default).
login_via_existing_session:
  enabled: false
  require_ui_auth: true
  token_timeout: 5m

# /.well-known/matrix/server (federation delegation, served on client listeners too) and
# /.well-known/matrix/support (whom users contact); each 404 while unset.
# well_known:
#   server: "matrix.city.example.jp:443"
#   support:
#     contacts:
#       - {{role: m.role.admin, email_address: "johosystem@city.example.jp"}}
#     support_page: "https://city.example.jp/matrix-help"

# Federation with other Matrix servers (over TLS on the listener above).
federation:
  enabled: true
  # Verify peers' certificates.  Turn off only on a closed test network.
  verify_tls: true
  # Trust an extra CA (PEM file) for outbound federation, e.g. a prefecture's private CA.
  # ca_file: ca.pem
  # Outbound federation to private/loopback addresses is refused unless allowed (SSRF guard).
  allow_private_addresses: {allow_private}
  # Connect to these servers at fixed addresses (closed networks without DNS):
  # server_overrides:
  #   town-a.example.jp: "10.0.0.5:8448"
  # Notary servers to ask for other servers' keys (none by default).
  trusted_key_servers: []
  # Closed federation (municipal networks): only with this node and the members of its
  # consortia; needs the consortium feature (features: consortium) and its documents.
  # closed: true

# Push notifications to the push gateways of users' pushers.
push:
  # Gateways on private/loopback addresses are refused unless allowed (SSRF guard).
  allow_private_addresses: false
  # Send message content to gateways (pushers may ask for event_id_only instead).
  include_content: true

# Presence (online/idle/offline in clients). Large servers turn it off, as with Synapse.
presence:
  enabled: true

# TURN servers for VoIP calls (coturn with use-auth-secret), none by default:
# turn:
#   uris: ["turn:turn.example.jp:3478?transport=udp", "turns:turn.example.jp:5349"]
#   shared_secret: "the static-auth-secret of coturn"
#   user_lifetime: 1h

# URL previews: the node fetches the pages users link to. Off by default; private,
# loopback and link-local addresses stay refused unless ip_range_allowlist holds them.
url_preview:
  enabled: false

# The features this node enables (see spec/extensions.md), each with its settings, e.g.
# features:
#   consortium: {{}}
"""


def render_config(
    server_name: str,
    directory: Path,
    *,
    enable_registration: bool = False,
    tls: tuple[str, str] | None = None,
) -> str:
    listener = default_listener(server_name)
    tls_text = (
        f'\n# TLS for the listener.\ntls:\n  certificate: "{tls[0]}"\n  private_key: "{tls[1]}"\n'
        if tls
        else "\n# TLS for the listener (PEM files):\n# tls:\n#   certificate: tls.crt\n#   private_key: tls.key\n"
    )
    return TEMPLATE.format(
        server_name=server_name,
        host=listener.host,
        port=listener.port,
        database=sqlite_url(directory.resolve() / "kairan.db"),
        enable_registration=str(enable_registration).lower(),
        requires_token=str(not enable_registration).lower(),
        tls=tls_text,
        allow_private=str(_is_loopback_name(server_name)).lower(),
    )


def _is_loopback_name(server_name: str) -> bool:
    host = split_server_name(server_name)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
