"""TURN credentials for VoIP (``GET /voip/turnServer``), as Synapse gives them.

With a shared secret (coturn's ``use-auth-secret``/``static-auth-secret``) each user gets
time-limited credentials: the username ``<expiry, unix seconds>:<user ID>`` and the
password base64(HMAC-SHA1(secret, username)), which coturn checks without asking us.  A
fixed username and password are given as they are.  With no TURN server configured the
answer is ``{}``, as Synapse's (the spec's schema wants the four fields; clients treat the
empty object as "no TURN server").  The secret is never logged (not even in the config's
repr).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from homeserver.config.model import TurnSettings


def turn_credentials(settings: TurnSettings, user_id: str, now_ms: int) -> dict[str, Any]:
    lifetime_ms = settings.user_lifetime_ms
    if settings.uris and settings.shared_secret:
        username = f"{(now_ms + lifetime_ms) // 1000}:{user_id}"
        mac = hmac.new(
            settings.shared_secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1
        )
        password = base64.b64encode(mac.digest()).decode("ascii")
    elif settings.uris and settings.username and settings.password:
        username, password = settings.username, settings.password
    else:
        return {}
    return {
        "username": username,
        "password": password,
        "ttl": lifetime_ms // 1000,
        "uris": list(settings.uris),
    }
