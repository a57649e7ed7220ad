"""The registry and the configuration of features and listeners: what a feature may not
register, and one-line errors for what a node's kairan.yaml may not say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config import CONFIG_FILE, ConfigError, Listener, load_config
from homeserver.extensions import FeatureError, RegistrationError, Registry, load_features
from homeserver.extensions.catalogue import CATALOGUE
from homeserver.extensions.loading import feature_command_paths
from homeserver.node.setup import init_node

SAMPLE = "tests.homeserver.extensions.sample:register"


async def _ok(request: Any) -> Any:
    raise AssertionError("never called")


def test_routes_must_stay_under_their_prefixes() -> None:
    registry = Registry()
    registry.add_client_route("GET", "/_matrix/client/unstable/jp.kairan/x", _ok)
    for bad in (
        "/_matrix/client/v3/login",
        "/_matrix/client/unstable/jp.kairan/../v3/login",
        "/_matrix/client/unstable/org.other/x",
    ):
        with pytest.raises(RegistrationError, match="is not under"):
            registry.add_client_route("GET", bad, _ok)
    with pytest.raises(RegistrationError):
        registry.add_federation_route("GET", "/_matrix/federation/v1/send/x", _ok)
    with pytest.raises(RegistrationError):
        registry.add_admin_route("GET", "/_synapse/admin/v1/users", _ok)
    frozen = registry.freeze()
    assert [r.path for r in frozen.client_routes] == ["/_matrix/client/unstable/jp.kairan/x"]


def test_migrations_need_a_feature_and_an_env(tmp_path: Path) -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match="by a feature"):
        registry.add_migrations(tmp_path)
    registry.begin("x")
    with pytest.raises(RegistrationError, match="env.py"):
        registry.add_migrations(tmp_path)
    with pytest.raises(RegistrationError, match="twice"):
        registry.begin("x")


def test_middleware_applies_to_its_zones() -> None:
    registry = Registry()
    everywhere, internet = object(), object()
    registry.add_middleware(everywhere)  # type: ignore[arg-type]
    registry.add_middleware(internet, zones=["internet"])  # type: ignore[arg-type]
    frozen = registry.freeze()
    assert frozen.middleware_for("default") == [everywhere]
    assert frozen.middleware_for("internet") == [everywhere, internet]


def test_unknown_and_broken_features_are_one_line_errors() -> None:
    from homeserver.common.clock import Clock
    from homeserver.config.listeners import FeatureSettings

    def load(name: str) -> None:
        load_features(
            [FeatureSettings(name, {})], server_name="x", directory=Path("."), db=None,
            clock=Clock(),
        )  # fmt: skip

    with pytest.raises(FeatureError, match="unknown feature 'nosuch'"):
        load("nosuch")
    with pytest.raises(FeatureError, match="cannot import"):
        load("tests.no_such_module:register")
    with pytest.raises(FeatureError, match="is not a function"):
        load("tests.homeserver.extensions.sample:nothing")


def _node(tmp_path: Path, **extra: Any) -> Path:
    init_node("kairan.test", tmp_path)
    path = tmp_path / CONFIG_FILE
    raw = yaml.safe_load(path.read_text())
    raw.update(extra)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return tmp_path


def test_features_and_listeners_in_kairan_yaml(tmp_path: Path) -> None:
    config = load_config(
        _node(
            tmp_path,
            features={SAMPLE: {"blocked_words": ["禁止"]}},
            listeners=[
                {"zone": "lgwan", "host": "10.0.0.5", "port": 8008},
                {"zone": "internet", "host": "0.0.0.0", "port": 8448, "resources": ["client"]},
            ],
        )
    )
    assert [f.name for f in config.features] == [SAMPLE]
    assert config.features[0].settings == {"blocked_words": ["禁止"]}
    assert config.listener == Listener("10.0.0.5", 8008, zone="lgwan")
    assert config.every_listener[1].resources == ("client",)
    assert load_config(_node(tmp_path / "plain")).every_listener == (
        load_config(tmp_path / "plain").listener,
    )
    # A listener takes what it does not say from listen: and tls:.
    inherited = load_config(_node(tmp_path / "inherit", listeners=[{"zone": "lgwan"}]))
    plain = load_config(tmp_path / "plain").listener
    assert inherited.listener == Listener(plain.host, plain.port, zone="lgwan")
    listed = load_config(_node(tmp_path / "list", features=["nosuch"]))
    assert [f.name for f in listed.features] == ["nosuch"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"listeners": []}, "non-empty list"),
        ({"listeners": [{"port": 0}]}, "port must be 1-65535"),
        ({"listeners": [{"zone": "Internet!"}]}, "zone must be a lower-case name"),
        ({"listeners": [{"resources": ["media"]}]}, "resources must be"),
        ({"listeners": [{"port": 9000}, {"port": 9000}]}, "two listeners"),
        ({"listeners": [{"tls": {"certificate": "a"}}]}, "needs both"),
        ({"listeners": [{"bogus": 1}]}, "unknown keys: bogus"),
        ({"features": "consortium"}, "features must be"),
        ({"features": {"Bad Name": {}}}, "not a feature name"),
        ({"features": {"x": [1]}}, "must be a mapping"),
    ],
)
def test_bad_listener_and_feature_settings(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(_node(tmp_path, **extra))
    assert "\n" not in str(refused.value)


def test_catalogued_features_contribute_command_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    import click
    from click.testing import CliRunner

    from cli.main import register_groups

    monkeypatch.setitem(CATALOGUE, "sample", SAMPLE)
    monkeypatch.setitem(CATALOGUE, "gone", "tests.no_such_module:register")
    paths = feature_command_paths()
    # The shipped features' groups too (partners); one that cannot be imported is left out.
    assert "tests.homeserver.extensions.sample:cli" in paths
    assert "homeserver.municipal.partners:cli" in paths
    assert "homeserver.municipal.consortium:cli" in paths
    assert "homeserver.municipal.directory:cli" in paths
    assert "homeserver.municipal.groups:cli" in paths
    assert not any("no_such_module" in p for p in paths)
    root = click.Group("kairan")
    register_groups(root, paths)
    result = CliRunner().invoke(root, ["sample", "hello", "根室"])
    assert result.exit_code == 0 and "こんにちは 根室" in result.output
