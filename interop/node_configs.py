"""The configuration files of the harness's nodes: Synapse's homeserver.yaml and logging,
and the harness's changes to the kairan.yaml that ``kairan init`` writes."""

from __future__ import annotations

import base64
import secrets
import string
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from interop.certs import CertPaths

LOOPBACK = "127.0.0.1"


def signing_key_line() -> str:
    """A Synapse-format key file line: ``ed25519 <version> <unpadded base64 seed>``."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    version = "a_" + "".join(secrets.choice(string.ascii_letters) for _ in range(4))
    return f"ed25519 {version} {base64.b64encode(seed).decode().rstrip('=')}\n"


# ---------------------------------------------------------------------- Synapse configuration

_BIG = {"per_second": 100000, "burst_count": 1000000}

# Synapse's default ip_range_blacklist minus loopback: for IP-literal destinations its
# federation client checks the blocklist only, so the allowlist alone is not enough.
_SYNAPSE_BLOCKLIST = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
    "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8",
    "fec0::/10",
]  # fmt: skip


def synapse_config(
    server_name: str,
    port: int,
    directory: Path,
    certs: CertPaths,
    log_level: str,
    *,
    host: str = LOOPBACK,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The homeserver.yaml and log config of a loopback Synapse that verifies its peers."""
    return _synapse_homeserver(server_name, host, port, directory, certs), _synapse_logging(
        directory, log_level
    )


def _synapse_logging(directory: Path, log_level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filters": ["context"],
                "filename": str(directory / "homeserver.log"),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": log_level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _synapse_homeserver(
    server_name: str, host: str, port: int, directory: Path, certs: CertPaths
) -> dict[str, Any]:
    return {
        "server_name": server_name,
        "public_baseurl": f"https://{server_name}/",
        "pid_file": str(directory / "homeserver.pid"),
        "report_stats": False,
        "enable_metrics": False,
        "listeners": [
            {
                "port": port,
                "bind_addresses": [host],
                "type": "http",
                "tls": True,
                "x_forwarded": False,
                "resources": [{"names": ["client", "federation", "keys", "media"]}],
            }
        ],
        "tls_certificate_path": str(certs.certificate),
        "tls_private_key_path": str(certs.private_key),
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "log_config": str(directory / "log.config"),
        "media_store_path": str(directory / "media_store"),
        "signing_key_path": str(directory / "signing.key"),
        "macaroon_secret_key": secrets.token_hex(24),
        "form_secret": secrets.token_hex(24),
        "registration_shared_secret": secrets.token_hex(24),
        # Loopback federation, peers verified against the throwaway CA.
        "federation_verify_certificates": True,
        "federation_custom_ca_list": [str(certs.ca)],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "ip_range_blacklist": _SYNAPSE_BLOCKLIST,
        "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
        # A peer that was down is retried within seconds, not after Synapse's 10 minutes.
        "federation": {
            "destination_min_retry_interval": "1s",
            "destination_retry_multiplier": 2,
            "destination_max_retry_interval": "5s",
        },
        **_SYNAPSE_OPEN,
    }


#: No internet, no presence, open registration, fast password hashing, no rate limits.
_SYNAPSE_OPEN: dict[str, Any] = {
    "url_preview_enabled": False,
    "presence": {"enabled": False},
    "allow_public_rooms_over_federation": True,
    "room_list_publication_rules": [{"action": "allow"}],
    "enable_registration": True,
    "enable_registration_without_verification": True,
    "bcrypt_rounds": 4,
    # Rate limits effectively off.
    "rc_message": _BIG,
    "rc_registration": _BIG,
    "rc_login": {"address": _BIG, "account": _BIG, "failed_attempts": _BIG},
    "rc_admin_redaction": _BIG,
    "rc_joins": {"local": _BIG, "remote": _BIG},
    "rc_joins_per_room": _BIG,
    "rc_key_requests": _BIG,
    "rc_invites": {"per_room": _BIG, "per_user": _BIG, "per_issuer": _BIG},
    "rc_third_party_invite": _BIG,
    "rc_room_creation": _BIG,
    "rc_presence": {"per_user": _BIG},
    "rc_delayed_event_mgmt": _BIG,
    "rc_reports": _BIG,
    "rc_profile": _BIG,
    "rc_media_create": _BIG,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 100000,
        "sleep_delay": 1,
        "reject_limit": 1000000,
        "concurrent": 1000,
    },
}


def kairan_overrides(config: dict[str, Any], certs: CertPaths) -> dict[str, Any]:
    """The harness's changes to the kairan.yaml that ``kairan init`` wrote."""
    config = dict(config)
    config["tls"] = {"certificate": str(certs.certificate), "private_key": str(certs.private_key)}
    config["enable_registration"] = True
    config["registration_requires_token"] = False
    config["rate_limit"] = {"per_second": 100000, "burst": 1000000}
    unlimited = {"per_second": 100000, "burst_count": 1000000}
    config["rc_login"] = {k: unlimited for k in ("address", "account", "failed_attempts")}
    config["rc_media_download"] = unlimited
    federation = dict(config.get("federation") or {})
    federation.update(
        {
            "enabled": True,
            "verify_tls": True,
            "ca_file": str(certs.ca),
            "allow_private_addresses": True,
            "trusted_key_servers": [],
        }
    )
    config["federation"] = federation
    return config
