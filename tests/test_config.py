"""Settings: TeslaMate's names and defaults, validation messages, derived values."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetlog.config import SETTINGS, ConfigError, load_settings, mask_url_password


def test_defaults_give_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = load_settings({"FLEETLOG_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'fleetlog.sqlite3'}"
    assert not s.uses_postgres
    assert s.tesla_auth_client_id == "ownerapi"
    assert s.database_port == 5432
    assert s.port == 4000
    assert s.http_binding_address == "127.0.0.1"
    assert s.mqtt_home_assistant_discovery_prefix == "homeassistant"
    assert not s.mqtt_enabled


def test_teslamate_compose_environment_selects_postgres() -> None:
    env = {
        "DATABASE_USER": "teslamate",
        "DATABASE_PASS": "p@ss:word/1",
        "DATABASE_NAME": "teslamate",
        "DATABASE_HOST": "database",
        "ENCRYPTION_KEY": "abc",
        "MQTT_HOST": "mosquitto",
    }
    s = load_settings(env)
    assert s.uses_postgres
    # The password is URL-quoted, so special characters survive.
    assert (
        s.database_url == "postgresql+psycopg://teslamate:p%40ss%3Aword%2F1@database:5432/teslamate"
    )
    assert s.database_url_masked == "postgresql+psycopg://teslamate:****@database:5432/teslamate"
    assert s.mqtt_enabled
    assert s.effective_mqtt_port == 1883


def test_explicit_url_wins_over_database_parts() -> None:
    s = load_settings({"FLEETLOG_DATABASE_URL": "postgres://u:pw@h/db", "DATABASE_HOST": "ignored"})
    assert s.database_url == "postgresql+psycopg://u:pw@h/db"


def test_socket_dir_and_ssl_modes(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = load_settings(
        {
            "DATABASE_SOCKET_DIR": "/run/postgresql",
            "DATABASE_NAME": "tm",
            "DATABASE_SSL": "true",
            "DATABASE_SSL_CA_CERT_FILE": str(ca),
        }
    )
    assert s.database_url.startswith("postgresql+psycopg:///tm?host=/run/postgresql&port=5432")
    assert "sslmode=verify-full" in s.database_url
    s2 = load_settings({"DATABASE_HOST": "h", "DATABASE_NAME": "tm", "DATABASE_SSL": "noverify"})
    assert s2.database_url.endswith("?sslmode=require")


def test_all_problems_reported_at_once_with_fixes() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            {
                "DATABASE_PORT": "fivefour",
                "TESLA_API_HOST": "api.myteslamate.com",
                "MQTT_NAMESPACE": "a/b",
                "POLLING_DEFAULT_INTERVAL": "soon",
                "FLEETLOG_LOG_LEVEL": "loud",
            }
        )
    text = str(err.value)
    assert len(err.value.problems) == 5
    assert "DATABASE_PORT='fivefour': expected a port number" in text
    assert "TESLA_API_HOST='api.myteslamate.com': expected an http:// or https:// URL" in text
    assert "MQTT_NAMESPACE='a/b': must not contain" in text
    assert "POLLING_DEFAULT_INTERVAL='soon'" in text
    assert "FLEETLOG_LOG_LEVEL='loud'" in text


def test_cross_checks() -> None:
    with pytest.raises(ConfigError, match="DATABASE_NAME is not set"):
        load_settings({"DATABASE_HOST": "db"})
    with pytest.raises(ConfigError, match="DATABASE_SSL=true needs DATABASE_SSL_CA_CERT_FILE"):
        load_settings({"DATABASE_HOST": "db", "DATABASE_NAME": "x", "DATABASE_SSL": "true"})
    with pytest.raises(ConfigError, match="needs MQTT: set MQTT_HOST"):
        load_settings({"MQTT_HOME_ASSISTANT_DISCOVERY": "true"})
    with pytest.raises(ConfigError, match="set both together"):
        load_settings({"TESLA_AUTH_PATH": "/api/oauth2/v3"})


def test_bad_secret_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"TOKEN": "?token="})
    assert "TOKEN=…" in str(err.value)


def test_token_legacy_forms_are_normalised() -> None:
    for raw in ("abc123xyz", "?token=abc123xyz", "token=abc123xyz", "  abc123xyz \n"):
        assert load_settings({"TOKEN": raw}).token == "abc123xyz"


def test_empty_variables_mean_unset() -> None:
    s = load_settings({"TESLA_API_HOST": "", "DATABASE_PORT": " ", "TOKEN": ""})
    assert s.tesla_api_host is None
    assert s.database_port == 5432
    assert s.token is None


def test_polling_never_faster_than_teslamate_default() -> None:
    s = load_settings({"POLLING_DEFAULT_INTERVAL": "5", "POLLING_ASLEEP_INTERVAL": "120"})
    assert s.polling_interval("default") == 15.0
    assert s.polling_interval("asleep") == 120.0
    assert s.polling_interval("driving") == 2.5


def test_mqtt_port_follows_tls() -> None:
    s = load_settings({"MQTT_HOST": "b", "MQTT_TLS": "true"})
    assert s.effective_mqtt_port == 8883
    assert load_settings({"MQTT_HOST": "b", "MQTT_PORT": "1884"}).effective_mqtt_port == 1884


def test_wss_flags_accept_any_non_empty_value_like_teslamate() -> None:
    s = load_settings({"TESLA_WSS_USE_VIN": "1", "TESLA_WSS_TLS_ACCEPT_INVALID_CERTS": "yes"})
    assert s.tesla_wss_use_vin and s.tesla_wss_tls_accept_invalid_certs
    assert not load_settings({"TESLA_WSS_USE_VIN": "false"}).tesla_wss_use_vin


def test_display_and_repr_mask_every_secret() -> None:
    secrets = {
        "DATABASE_PASS": "hunter2hunter2",
        "ENCRYPTION_KEY": "k3y-material",
        "TOKEN": "tok-abcdefgh",
        "MQTT_PASSWORD": "mqtt-pw-secret",
        "FLEETLOG_DATABASE_URL": "postgresql://u:urlsecret99@h/db",
    }
    s = load_settings(secrets)
    shown = s.display()
    rendered = repr(s) + repr(shown)
    for value in (
        "hunter2hunter2",
        "k3y-material",
        "tok-abcdefgh",
        "mqtt-pw-secret",
        "urlsecret99",
    ):
        assert value not in rendered
    assert shown["FLEETLOG_DATABASE_URL"] == "postgresql://u:****@h/db"
    assert set(s.secret_values()) >= {"hunter2hunter2", "k3y-material", "tok-abcdefgh"}


def test_every_setting_has_unique_name_and_help() -> None:
    names = [s.env for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.help.endswith(".") or s.help.endswith(")") for s in SETTINGS)


def test_mask_url_password_leaves_urls_without_password() -> None:
    assert mask_url_password("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask_url_password("postgresql://u@h/db") == "postgresql://u@h/db"
