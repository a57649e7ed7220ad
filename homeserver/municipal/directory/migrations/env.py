from homeserver.municipal.directory.storage import metadata
from homeserver.storage.features import run_env

run_env(metadata)
