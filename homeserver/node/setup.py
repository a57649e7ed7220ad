"""Creating a node's directory: configuration, signing key, optional self-signed TLS."""

from __future__ import annotations

from pathlib import Path

from federation.identifiers import InvalidIdentifier, split_server_name
from federation.signing import generate_signing_key
from homeserver.config import CONFIG_FILE, ConfigError, render_config
from homeserver.node.tls import write_self_signed


def init_node(
    server_name: str,
    directory: Path,
    *,
    enable_registration: bool = False,
    tls_self_signed: bool = False,
) -> Path:
    """Write ``DIRECTORY/kairan.yaml`` and the signing key; refuse to overwrite either."""
    try:
        host, _ = split_server_name(server_name)
    except InvalidIdentifier as e:
        raise ConfigError(str(e)) from e
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / CONFIG_FILE
    key_path = directory / "signing.key"
    for existing in (config_path, key_path):
        if existing.exists():
            raise ConfigError(f"{existing} already exists; refusing to overwrite it")
    tls = None
    if tls_self_signed:
        write_self_signed(host, directory / "tls.crt", directory / "tls.key")
        tls = ("tls.crt", "tls.key")
    key = generate_signing_key()
    key_path.write_text(key.key_file_line() + "\n", encoding="utf-8")
    key_path.chmod(0o600)
    config_path.write_text(
        render_config(server_name, directory, enable_registration=enable_registration, tls=tls),
        encoding="utf-8",
    )
    return config_path
