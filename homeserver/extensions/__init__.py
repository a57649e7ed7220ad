"""Extension points of the node and the registry that features plug into.

A feature is a package with a ``register(registry, context)`` function (see
``docs`` in spec/extensions.md): it adds event policies, a peer policy, listeners, sync
extensions, upload filters, login checks, middleware per listener zone, routes under the
``jp.kairan`` prefixes, admin routes and its own migrations.  The core never imports a
feature; the composition root loads those the node's kairan.yaml enables.
"""

from homeserver.extensions.loading import FeatureContext, FeatureError, load_features
from homeserver.extensions.points import (
    ClientInfo,
    EventListener,
    EventPolicy,
    LoginAttempt,
    LoginCheck,
    PeerPolicy,
    PinnedKeys,
    ProfileFields,
    ProposedEvent,
    SyncExtension,
    Upload,
    UploadDecision,
    UploadFilter,
    UserDirectoryFilter,
    UserDirectorySource,
)
from homeserver.extensions.registry import (
    NO_EXTENSIONS,
    Extensions,
    RegistrationError,
    Registry,
)

__all__ = [
    "NO_EXTENSIONS",
    "ClientInfo",
    "EventListener",
    "EventPolicy",
    "Extensions",
    "FeatureContext",
    "FeatureError",
    "LoginAttempt",
    "LoginCheck",
    "PeerPolicy",
    "PinnedKeys",
    "ProfileFields",
    "ProposedEvent",
    "RegistrationError",
    "Registry",
    "SyncExtension",
    "Upload",
    "UploadDecision",
    "UploadFilter",
    "UserDirectoryFilter",
    "UserDirectorySource",
    "load_features",
]
