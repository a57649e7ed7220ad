from homeserver.municipal.groups.storage import metadata
from homeserver.storage.features import run_env

run_env(metadata)
