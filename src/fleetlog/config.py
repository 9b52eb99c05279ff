"""Settings, read once from the environment and validated.

fleetlog honours TeslaMate's environment variables with their names, meanings
and defaults, so a TeslaMate docker-compose environment works unchanged; its own
settings are named ``FLEETLOG_*``. Every setting is declared once in
:data:`SETTINGS`, which drives parsing, validation, ``fleetlog config show`` and
the configuration reference in the README (a test keeps the README in step).

Where fleetlog deliberately differs from TeslaMate, the entry's help says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """One or more settings are wrong; the message says which and how to fix them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"fleetlog cannot start: {len(problems)} setting(s) to fix:\n{lines}")


# --- value parsers -----------------------------------------------------------------
# Each parser takes the raw string and returns the value or raises ValueError with a
# message that completes the sentence "NAME=value: ...".

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def _present(raw: str) -> bool:
    """Any non-empty value is on, as TeslaMate reads TESLA_WSS_USE_VIN; but 'false' is off."""
    value = raw.strip().lower()
    return value not in _FALSE


def _str(raw: str) -> str:
    return raw


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a port number between 1 and 65535") from None
    if not 1 <= value <= 65535:
        raise ValueError("expected a port number between 1 and 65535")
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a whole number greater than 0") from None
    if value <= 0:
        raise ValueError("expected a whole number greater than 0")
    return value


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds, e.g. 15 or 2.5") from None
    if value < 0 or value != value or value == float("inf"):
        raise ValueError("expected a number of seconds that is 0 or more")
    return value


def _http_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http:// or https:// URL, e.g. https://api.myteslamate.com")
    return value


def _wss_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError("expected a ws:// or wss:// URL, e.g. wss://streaming.myteslamate.com")
    return value


def _path(raw: str) -> str:
    value = raw.strip()
    if value and not value.startswith("/"):
        raise ValueError("expected a path starting with '/', e.g. /oauth2/v3")
    return value.rstrip("/")


def _token(raw: str) -> str:
    # TeslaMate's early provider guide told users to write TOKEN=?token=xxxx; the
    # current code strips that prefix, and so do we.
    value = raw.strip()
    for prefix in ("?token=", "token="):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    if not value:
        raise ValueError("no token after '?token='; paste your provider's token")
    return value


def _db_ssl(raw: str) -> str:
    value = raw.strip().lower()
    if value in ("", "false", "0", "no", "off"):
        return "false"
    if value in ("true", "1", "yes", "on"):
        return "true"
    if value == "noverify":
        return "noverify"
    raise ValueError("expected true, false or noverify")


def _namespace(raw: str) -> str:
    value = raw.strip()
    if any(c in value for c in "/+#"):
        raise ValueError("must not contain '/', '+' or '#'")
    return value


def _mqtt_prefix(raw: str) -> str:
    value = raw.strip()
    if not value or any(c in value for c in "+#"):
        raise ValueError("must be a topic prefix without '+' or '#', e.g. homeassistant")
    return value


def _url_path(raw: str) -> str:
    value = raw.strip() or "/"
    if not value.startswith("/"):
        raise ValueError("expected a path starting with '/', e.g. /fleetlog")
    return value


def _timezone(raw: str) -> str:
    value = raw.strip()
    if value.startswith(":"):  # POSIX allows TZ=:Europe/Berlin
        value = value[1:]
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone; use an IANA name such as Europe/Berlin") from None
    return value


def _check_origin(raw: str) -> str:
    return raw.strip()


def _database_url(raw: str) -> str:
    value = raw.strip()
    scheme = urlsplit(value).scheme
    if not scheme.startswith(("sqlite", "postgres")):
        raise ValueError(
            "expected an sqlite:///path or postgresql://user:pass@host/db URL "
            "(fleetlog stores data in SQLite or PostgreSQL)"
        )
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected debug, info, warning or error")
    return value


def _directory(raw: str) -> str:
    return str(Path(raw.strip()).expanduser())


def _proxy(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"https?://[^/\s]+/?", value):
        raise ValueError("expected http://host:port")
    return value.rstrip("/")


def _binding(raw: str) -> str:
    return raw.strip()


_PROVIDERS = ("owner", "myteslamate", "teslemetry", "fleet-na", "fleet-eu", "fleet-cn")


def _provider(raw: str) -> str:
    value = raw.strip().lower()
    if value not in _PROVIDERS:
        raise ValueError(f"expected one of {', '.join(_PROVIDERS)}")
    return value


def _usd(raw: str) -> float:
    try:
        value = float(raw.strip().lstrip("$"))
    except ValueError:
        raise ValueError("expected an amount in US dollars, e.g. 10 or 0.002") from None
    if value < 0 or value != value or value == float("inf"):
        raise ValueError("expected an amount in US dollars that is 0 or more")
    return value


_TELEMETRY_SCHEMES = ("mqtt", "mqtts", "zmq", "redis", "rediss")


def _telemetry_urls(raw: str) -> str:
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in _TELEMETRY_SCHEMES or not parts.hostname:
            raise ValueError(
                "expected fleet-telemetry dispatcher URLs such as mqtt://host:1883/telemetry, "
                "zmq://host:5284 or redis://host:6379/0?namespace=tesla (comma-separated)"
            )
    return ",".join(urls)


def _mqtt_group(raw: str) -> str:
    value = raw.strip()
    if any(c in value for c in "/+#"):
        raise ValueError("must not contain '/', '+' or '#'")
    return value


# Sections vehicle_data accepts (Fleet API docs); a typo would silently drop data.
_VEHICLE_DATA_SECTIONS = (
    "charge_state",
    "climate_state",
    "closures_state",
    "drive_state",
    "gui_settings",
    "location_data",
    "charge_schedule_data",
    "preconditioning_schedule_data",
    "vehicle_config",
    "vehicle_state",
    "vehicle_data_combo",
)


def _endpoints(raw: str) -> str:
    names = [n.strip() for n in raw.replace(",", ";").split(";") if n.strip()]
    if not names:
        raise ValueError("expected a ;-separated list such as charge_state;drive_state")
    unknown = [n for n in names if n not in _VEHICLE_DATA_SECTIONS]
    if unknown:
        raise ValueError(
            f"unknown section(s) {', '.join(unknown)}; known: {', '.join(_VEHICLE_DATA_SECTIONS)}"
        )
    return ";".join(names)


_GEOCODERS = ("offline", "nominatim", "off")


def _geocoder(raw: str) -> str:
    value = raw.strip().lower()
    if value not in _GEOCODERS:
        raise ValueError(f"expected one of {', '.join(_GEOCODERS)}")
    return value


def _tile_url(raw: str) -> str:
    value = raw.strip()
    if value.lower() in ("off", "none", "false"):
        return ""
    if not value.startswith(("http://", "https://")) or not all(
        part in value for part in ("{z}", "{x}", "{y}")
    ):
        raise ValueError("expected an http(s) URL with {z}, {x} and {y}, or off")
    return value


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, default, parser and meaning."""

    env: str
    attr: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    group: str
    secret: bool = False


_G_DB = "Database"
_G_TESLA = "Tesla API, sign-in and streaming"
_G_POLL = "Polling"
_G_MQTT = "MQTT"
_G_WEB = "Web app"
_G_MISC = "Other"
_G_OWN = "fleetlog's own"

SETTINGS: tuple[Setting, ...] = (
    # Database
    Setting("DATABASE_USER", "database_user", None, _str, "PostgreSQL user.", _G_DB),
    Setting("DATABASE_PASS", "database_pass", None, _str, "PostgreSQL password.", _G_DB, True),
    Setting(
        "DATABASE_NAME",
        "database_name",
        None,
        _str,
        "PostgreSQL database name (required when DATABASE_HOST or DATABASE_SOCKET_DIR is set).",
        _G_DB,
    ),
    Setting(
        "DATABASE_HOST",
        "database_host",
        None,
        _str,
        "PostgreSQL host. When set (and FLEETLOG_DATABASE_URL is not), fleetlog uses "
        "PostgreSQL, so a TeslaMate environment works unchanged.",
        _G_DB,
    ),
    Setting("DATABASE_PORT", "database_port", 5432, _port, "PostgreSQL port.", _G_DB),
    Setting(
        "DATABASE_SOCKET_DIR",
        "database_socket_dir",
        None,
        _str,
        "Directory of the PostgreSQL UNIX socket (instead of host/port); peer auth when "
        "user/password are omitted.",
        _G_DB,
    ),
    Setting(
        "DATABASE_SSL",
        "database_ssl",
        "false",
        _db_ssl,
        "TLS to PostgreSQL: false, true (verify against DATABASE_SSL_CA_CERT_FILE) or noverify.",
        _G_DB,
    ),
    Setting(
        "DATABASE_SSL_CA_CERT_FILE",
        "database_ssl_ca_cert_file",
        None,
        _str,
        "CA certificate file for DATABASE_SSL=true.",
        _G_DB,
    ),
    Setting(
        "DATABASE_SSL_SNI",
        "database_ssl_sni",
        None,
        _str,
        "Server name for DATABASE_SSL=noverify (defaults to the host).",
        _G_DB,
    ),
    Setting("DATABASE_IPV6", "database_ipv6", False, _bool, "Connect over IPv6.", _G_DB),
    Setting(
        "DATABASE_POOL_SIZE",
        "database_pool_size",
        10,
        _positive_int,
        "Pool size.",
        _G_DB,
    ),
    Setting(
        "DATABASE_TIMEOUT",
        "database_timeout_ms",
        60000,
        _positive_int,
        "Database query/connect timeout in milliseconds.",
        _G_DB,
    ),
    Setting(
        "ENCRYPTION_KEY",
        "encryption_key",
        None,
        _str,
        "Key that encrypts the stored Tesla tokens (AES-256-GCM, TeslaMate's layout, so an "
        "adopted TeslaMate database's tokens stay readable). Unset: fleetlog generates one "
        "once and keeps it in FLEETLOG_DATA_DIR/encryption.key (mode 0600).",
        _G_DB,
        True,
    ),
    # Tesla
    Setting(
        "TESLA_API_HOST",
        "tesla_api_host",
        None,
        _http_url,
        "Base URL of every REST call. Unset: https://owner-api.teslamotors.com (Chinese "
        "accounts: https://owner-api.vn.cloud.tesla.cn), or the FLEETLOG_PROVIDER preset.",
        _G_TESLA,
    ),
    Setting(
        "TESLA_AUTH_HOST",
        "tesla_auth_host",
        None,
        _http_url,
        "Host of the token endpoint. Unset: https://auth.tesla.com.",
        _G_TESLA,
    ),
    Setting(
        "TESLA_AUTH_PATH",
        "tesla_auth_path",
        None,
        _path,
        "Path appended to TESLA_AUTH_HOST (e.g. /oauth2/v3, /api/oauth2/v3). Unset: /oauth2/v3 "
        "(TeslaMate uses an empty path when only TESLA_AUTH_HOST is set; set both together).",
        _G_TESLA,
    ),
    Setting(
        "TESLA_AUTH_CLIENT_ID",
        "tesla_auth_client_id",
        "ownerapi",
        _str,
        "client_id of the token refresh; your developer app's id for direct Fleet API use.",
        _G_TESLA,
    ),
    Setting(
        "TESLA_WSS_HOST",
        "tesla_wss_host",
        None,
        _wss_url,
        "Streaming websocket base (fleetlog appends /streaming/). Unset: "
        "wss://streaming.vn.teslamotors.com.",
        _G_TESLA,
    ),
    Setting(
        "TESLA_WSS_TLS_ACCEPT_INVALID_CERTS",
        "tesla_wss_tls_accept_invalid_certs",
        False,
        _present,
        "Do not verify the streaming websocket's TLS certificate (MyTeslaMate needs it).",
        _G_TESLA,
    ),
    Setting(
        "TESLA_WSS_USE_VIN",
        "tesla_wss_use_vin",
        False,
        _present,
        "Subscribe to the stream with the VIN instead of vehicle_id (MyTeslaMate's "
        "telemetry-backed websocket).",
        _G_TESLA,
    ),
    Setting(
        "TOKEN",
        "token",
        None,
        _token,
        "A Fleet API provider's token (MyTeslaMate, Teslemetry), sent as Authorization: Bearer on "
        "REST and auth calls; the older form ?token=… is accepted.",
        _G_TESLA,
        True,
    ),
    # Polling (TeslaMate semantics: a value can only make polling slower than the default)
    Setting(
        "POLLING_ASLEEP_INTERVAL",
        "polling_asleep_interval",
        30.0,
        _seconds,
        "Seconds between checks of a sleeping car (free vehicle endpoint).",
        _G_POLL,
    ),
    Setting(
        "POLLING_CHARGING_INTERVAL",
        "polling_charging_interval",
        5.0,
        _seconds,
        "Minimum seconds between polls while charging.",
        _G_POLL,
    ),
    Setting(
        "POLLING_DRIVING_INTERVAL",
        "polling_driving_interval",
        2.5,
        _seconds,
        "Seconds between polls while driving without a stream.",
        _G_POLL,
    ),
    Setting(
        "POLLING_ONLINE_INTERVAL",
        "polling_online_interval",
        60.0,
        _seconds,
        "Seconds between polls of an online car that is in service.",
        _G_POLL,
    ),
    Setting(
        "POLLING_DEFAULT_INTERVAL",
        "polling_default_interval",
        15.0,
        _seconds,
        "Seconds between polls of an online, idle car; also driving with a stream.",
        _G_POLL,
    ),
    Setting(
        "POLLING_MINIMUM_INTERVAL",
        "polling_minimum_interval",
        0.0,
        _seconds,
        "A floor under every scheduled poll, in seconds.",
        _G_POLL,
    ),
    # MQTT
    Setting("DISABLE_MQTT", "disable_mqtt", False, _bool, "Turn MQTT publishing off.", _G_MQTT),
    Setting(
        "MQTT_HOST",
        "mqtt_host",
        None,
        _str,
        "MQTT broker host. Unlike TeslaMate, unset means MQTT is off (so the embedded default "
        "needs no broker).",
        _G_MQTT,
    ),
    Setting(
        "MQTT_PORT",
        "mqtt_port",
        None,
        _port,
        "Port; unset: 1883, or 8883 with TLS.",
        _G_MQTT,
    ),
    Setting("MQTT_USERNAME", "mqtt_username", None, _str, "Broker user name.", _G_MQTT),
    Setting("MQTT_PASSWORD", "mqtt_password", None, _str, "Broker password.", _G_MQTT, True),
    Setting("MQTT_TLS", "mqtt_tls", False, _bool, "Connect to the broker over TLS.", _G_MQTT),
    Setting(
        "MQTT_TLS_ACCEPT_INVALID_CERTS",
        "mqtt_tls_accept_invalid_certs",
        False,
        _bool,
        "Do not verify the broker's TLS certificate.",
        _G_MQTT,
    ),
    Setting("MQTT_IPV6", "mqtt_ipv6", False, _bool, "Connect to the broker over IPv6.", _G_MQTT),
    Setting(
        "MQTT_NAMESPACE",
        "mqtt_namespace",
        None,
        _namespace,
        "Inserted into topics as teslamate/<namespace>/cars/…; no '/', '+' or '#'.",
        _G_MQTT,
    ),
    Setting(
        "MQTT_HOME_ASSISTANT_DISCOVERY",
        "mqtt_home_assistant_discovery",
        False,
        _bool,
        "Publish Home Assistant MQTT discovery configs.",
        _G_MQTT,
    ),
    Setting(
        "MQTT_HOME_ASSISTANT_DISCOVERY_URL",
        "mqtt_home_assistant_discovery_url",
        None,
        _str,
        "configuration_url shown on the Home Assistant device.",
        _G_MQTT,
    ),
    Setting(
        "MQTT_HOME_ASSISTANT_DISCOVERY_PREFIX",
        "mqtt_home_assistant_discovery_prefix",
        "homeassistant",
        _mqtt_prefix,
        "Home Assistant discovery topic prefix.",
        _G_MQTT,
    ),
    # Web
    Setting("PORT", "port", 4000, _port, "Port of the web app.", _G_WEB),
    Setting(
        "HTTP_BINDING_ADDRESS",
        "http_binding_address",
        "127.0.0.1",
        _binding,
        "Address the web app listens on. Unlike TeslaMate (all addresses), the default is "
        "127.0.0.1: another address needs authentication configured.",
        _G_WEB,
    ),
    Setting("VIRTUAL_HOST", "virtual_host", "localhost", _str, "Host name in URLs.", _G_WEB),
    Setting("URL_PATH", "url_path", "/", _url_path, "Path prefix behind a reverse proxy.", _G_WEB),
    Setting(
        "CHECK_ORIGIN",
        "check_origin",
        "false",
        _check_origin,
        "Websocket/SSE origin check: true, false or a comma-separated list of origins.",
        _G_WEB,
    ),
    # Other TeslaMate settings
    Setting(
        "DEFAULT_GEOFENCE",
        "default_geofence",
        "",
        _str,
        "Value published on the MQTT geofence topic when the car is outside every geofence.",
        _G_MISC,
    ),
    Setting(
        "NOMINATIM_PROXY",
        "nominatim_proxy",
        None,
        _proxy,
        "HTTP proxy for Nominatim requests (http://host:port).",
        _G_MISC,
    ),
    Setting(
        "TZ",
        "tz",
        "UTC",
        _timezone,
        "Time zone for logs and the default display time zone (IANA name).",
        _G_MISC,
    ),
    # fleetlog's own
    Setting(
        "FLEETLOG_DATABASE_URL",
        "fleetlog_database_url",
        None,
        _database_url,
        "Database URL (sqlite:///path or postgresql://…); wins over DATABASE_*. Unset and no "
        "DATABASE_HOST: an SQLite file fleetlog.sqlite3 in FLEETLOG_DATA_DIR.",
        _G_OWN,
        True,
    ),
    Setting(
        "FLEETLOG_DATA_DIR",
        "data_dir",
        None,
        _directory,
        "Directory for the SQLite database, the generated encryption key and other state. "
        "Unset: $XDG_DATA_HOME/fleetlog (~/.local/share/fleetlog).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_LOG_LEVEL",
        "log_level",
        "INFO",
        _log_level,
        "Log level: debug, info, warning or error.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_PROVIDER",
        "provider",
        None,
        _provider,
        "Preset that fills TESLA_API_HOST, TESLA_AUTH_HOST, TESLA_AUTH_PATH (and rates) for one "
        "documented setup: owner, myteslamate, teslemetry, fleet-na, fleet-eu or fleet-cn. "
        "Variables you set yourself win. See docs/providers.md.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_TOKEN_IN_QUERY",
        "token_in_query",
        False,
        _bool,
        "Send TOKEN as ?token=… on REST calls instead of an Authorization header, for providers "
        "that want it (it is never logged either way).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_VEHICLE_DATA_ENDPOINTS",
        "vehicle_data_endpoints",
        "charge_state;climate_state;closures_state;drive_state;gui_settings;location_data;"
        "vehicle_config;vehicle_state;vehicle_data_combo",
        _endpoints,
        "Sections requested from vehicle_data (;-separated). Keep location_data: without it "
        "firmware 2023.38+ sends no position.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_BUDGET_MONTHLY_USD",
        "budget_monthly_usd",
        10.0,
        _usd,
        "Monthly Fleet API spend cap of the account in USD, shared by its cars (default: Tesla's "
        "$10 monthly credit). Polling slows as the cap nears; it is never exceeded.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_BUDGET_DAILY_VEHICLE_DATA",
        "budget_daily_vehicle_data",
        300,
        _positive_int,
        "Most vehicle_data calls per car and day (TeslaMate's Fleet API page quotes 300).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_RATE_DATA_USD",
        "rate_data_usd",
        0.002,
        _usd,
        "Price of one vehicle_data call (Tesla: 500 per $1; Teslemetry preset: $0.0025).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_RATE_WAKE_USD",
        "rate_wake_usd",
        0.02,
        _usd,
        "Price of one wake_up (Tesla: 50 per $1; Teslemetry preset: $0.025).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_RATE_COMMAND_USD",
        "rate_command_usd",
        0.001,
        _usd,
        "Price of one command (Tesla: 1,000 per $1; Teslemetry preset: $0.00125).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_WEB_AUTH",
        "web_auth",
        None,
        _str,
        "Web app sign-in: user:password, or a bare token (sent as Bearer by scripts, or typed as "
        "the password). Required to listen on another address than loopback.",
        _G_OWN,
        True,
    ),
    Setting(
        "FLEETLOG_WEB_ALLOW_UNAUTHENTICATED",
        "web_allow_unauthenticated",
        False,
        _bool,
        "Serve the web app on a non-loopback address without FLEETLOG_WEB_AUTH (only behind a "
        "proxy that authenticates).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_WEB_SECRET_KEY",
        "web_secret_key",
        None,
        _str,
        "Key that signs web sessions and CSRF tokens. Unset: a random key per start (a restart "
        "signs everyone out).",
        _G_OWN,
        True,
    ),
    Setting(
        "FLEETLOG_WEB_TILE_URL",
        "web_tile_url",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        _tile_url,
        "Map tile URL template, loaded by the browser only; off: maps without tiles.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_GEOCODER",
        "geocoder",
        "offline",
        _geocoder,
        "Addresses of drives and charges: offline (city level, from data shipped with "
        "fleetlog, no network), nominatim (street level from OpenStreetMap's Nominatim, "
        "filled in the background; city level until then) or off. TeslaMate always uses "
        "the public Nominatim.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_NOMINATIM_URL",
        "nominatim_url",
        "https://nominatim.openstreetmap.org",
        _http_url,
        "Base URL of the Nominatim server (a self-hosted one works); the address language "
        "is the one chosen in the settings. At most one request per second is sent.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_NOMINATIM_TIMEOUT",
        "nominatim_timeout",
        10.0,
        _seconds,
        "Seconds to wait for one Nominatim answer before trying again later.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_ADDRESS_REPAIR_INTERVAL",
        "address_repair_interval",
        3600.0,
        _seconds,
        "Seconds between passes that fill missing addresses (and re-fetch them after the "
        "language changed).",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_TELEMETRY",
        "telemetry",
        None,
        _telemetry_urls,
        "Where your own fleet-telemetry server publishes, one URL per dispatcher (comma-"
        "separated): mqtt://[user:pass@]host:1883/<topic_base>, zmq://host:5284?namespace=tesla "
        "or redis://[:pass@]host:6379/0?namespace=tesla (mqtts://, rediss:// for TLS). "
        "Protobuf and JSON records are both read. See docs/streaming.md.",
        _G_OWN,
        True,
    ),
    Setting(
        "FLEETLOG_TELEMETRY_SHARED_GROUP",
        "telemetry_shared_group",
        None,
        _mqtt_group,
        "MQTT v5 shared-subscription group: fleetlog workers with the same group split the "
        "fleet's telemetry messages between them.",
        _G_OWN,
    ),
    Setting(
        "FLEETLOG_TESLEMETRY_STREAM_URL",
        "teslemetry_stream_url",
        None,
        _http_url,
        "Teslemetry's stream (e.g. https://api.teslemetry.com): each car's Server-Sent Events "
        "at /sse/{vin}, authenticated with TOKEN.",
        _G_OWN,
    ),
)

_BY_ATTR = {s.attr: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings: every entry of :data:`SETTINGS` as an attribute."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)  # attr -> "env" | "default"

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        # Never let a secret reach a log line or a traceback through repr().
        return f"Settings({', '.join(f'{k}={v}' for k, v in self.display().items())})"

    # --- derived values -------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        """The data directory (not created here)."""
        configured = self.values["data_dir"]
        if configured:
            return Path(configured)
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "share"
        return base / "fleetlog"

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the database (may contain the password: never log it raw)."""
        explicit: str | None = self.values["fleetlog_database_url"]
        if explicit:
            if explicit.startswith(("postgres://", "postgresql://")):
                return "postgresql+psycopg://" + explicit.split("://", 1)[1]
            return explicit
        if self.values["database_host"] or self.values["database_socket_dir"]:
            return self._postgres_url_from_parts()
        return f"sqlite:///{self.data_path / 'fleetlog.sqlite3'}"

    def _postgres_url_from_parts(self) -> str:
        v = self.values
        user = quote(v["database_user"] or "", safe="")
        password = quote(v["database_pass"] or "", safe="")
        auth = user + (f":{password}" if password else "")
        host = "" if v["database_socket_dir"] else (v["database_host"] or "")
        if host and ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        netloc = f"{auth}@" if auth else ""
        netloc += f"{host}:{v['database_port']}" if host else ""
        query: list[str] = []
        if v["database_socket_dir"]:
            query.append(f"host={quote(v['database_socket_dir'], safe='/')}")
            query.append(f"port={v['database_port']}")
        if v["database_ssl"] == "true":
            query.append("sslmode=verify-full")
            if v["database_ssl_ca_cert_file"]:
                query.append(f"sslrootcert={quote(v['database_ssl_ca_cert_file'], safe='/')}")
        elif v["database_ssl"] == "noverify":
            query.append("sslmode=require")
        name = quote(v["database_name"] or "", safe="")
        # Built by hand: urlunsplit drops the empty authority a socket URL needs ("///").
        url = f"postgresql+psycopg://{netloc}/{name}"
        return f"{url}?{'&'.join(query)}" if query else url

    @property
    def database_url_masked(self) -> str:
        """The database URL with the password replaced, safe to print and log."""
        return mask_url_password(self.database_url)

    @property
    def mqtt_enabled(self) -> bool:
        return not self.values["disable_mqtt"] and bool(self.values["mqtt_host"])

    @property
    def effective_mqtt_port(self) -> int:
        port: int | None = self.values["mqtt_port"]
        if port is not None:
            return port
        return 8883 if self.values["mqtt_tls"] else 1883

    def polling_interval(self, name: str) -> float:
        """A POLLING_* interval in seconds with TeslaMate's rule: never faster than the default."""
        setting = _BY_ATTR[f"polling_{name}_interval"]
        value: float = self.values[setting.attr]
        return max(value, float(setting.default))

    def secret_values(self) -> list[str]:
        """Every secret value set, for log redaction."""
        out: list[str] = []
        for s in SETTINGS:
            value = self.values.get(s.attr)
            if s.secret and value:
                out.append(str(value))
        password = self.values.get("database_pass")
        if password:
            out.append(quote(str(password), safe=""))
        return out

    def display(self) -> dict[str, str]:
        """Every setting by environment name, secrets masked, for `config show`."""
        shown: dict[str, str] = {}
        for s in SETTINGS:
            value = self.values.get(s.attr)
            if value is None or value == "":
                text = "(unset)"
            elif s.secret:
                text = mask_url_password(str(value)) if s.env == "FLEETLOG_DATABASE_URL" else "****"
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
            shown[s.env] = text
        return shown


def mask_url_password(url: str) -> str:
    """Replace the password in a URL's authority with ``****``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:****@{hostport}"))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting from `env` (default: the process environment).

    Raises :class:`ConfigError` listing every problem at once, each with the
    variable, the offending value (never for a secret) and what to write instead.
    """
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[str] = []
    for s in SETTINGS:
        raw = source.get(s.env)
        # An empty variable means unset, as docker-compose files often write VAR= .
        if raw is None or raw.strip() == "":
            values[s.attr] = s.default
            origins[s.attr] = "default"
            continue
        try:
            values[s.attr] = s.parse(raw)
            origins[s.attr] = "env"
        except ValueError as exc:
            shown = "…" if s.secret else repr(raw)
            problems.append(f"{s.env}={shown}: {exc}.")
    if not problems:
        problems.extend(_cross_checks(values))
    if problems:
        raise ConfigError(problems)
    return Settings(values=values, sources=origins)


def _cross_checks(v: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    postgres_parts = v["database_host"] or v["database_socket_dir"]
    if postgres_parts and not v["fleetlog_database_url"] and not v["database_name"]:
        problems.append(
            "DATABASE_NAME is not set: with DATABASE_HOST or DATABASE_SOCKET_DIR fleetlog uses "
            "PostgreSQL and needs the database name (e.g. DATABASE_NAME=teslamate)."
        )
    if v["database_ssl"] == "true" and not v["database_ssl_ca_cert_file"]:
        problems.append(
            "DATABASE_SSL=true needs DATABASE_SSL_CA_CERT_FILE (the CA that signed the server's "
            "certificate), or use DATABASE_SSL=noverify."
        )
    ca = v["database_ssl_ca_cert_file"]
    if ca and not Path(ca).is_file():
        problems.append(f"DATABASE_SSL_CA_CERT_FILE={ca!r}: no such file.")
    if v["mqtt_home_assistant_discovery"] and (v["disable_mqtt"] or not v["mqtt_host"]):
        problems.append(
            "MQTT_HOME_ASSISTANT_DISCOVERY=true needs MQTT: set MQTT_HOST (and unset DISABLE_MQTT)."
        )
    if v["tesla_auth_path"] and not v["tesla_auth_host"]:
        problems.append(
            "TESLA_AUTH_PATH is set without TESLA_AUTH_HOST: set both together, e.g. "
            "TESLA_AUTH_HOST=https://api.myteslamate.com TESLA_AUTH_PATH=/api/oauth2/v3."
        )
    return problems


def reference_markdown() -> str:
    """The configuration reference as Markdown tables (the README embeds this verbatim)."""
    lines: list[str] = []
    group = None
    for s in SETTINGS:
        if s.group != group:
            group = s.group
            lines += ["", f"**{group}**", "", "| variable | default | meaning |", "|---|---|---|"]
        if s.default is None:
            default = "—"
        elif s.default == "":
            default = '`""`'
        elif isinstance(s.default, bool):
            default = f"`{str(s.default).lower()}`"
        else:
            default = f"`{s.default}`"
        secret = " *(secret)*" if s.secret else ""
        lines.append(f"| `{s.env}` | {default} | {s.help}{secret} |")
    return "\n".join(lines).strip() + "\n"
