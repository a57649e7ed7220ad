from homeserver.storage.features import run_env
from tests.homeserver.extensions.sample.storage import metadata

run_env(metadata)
