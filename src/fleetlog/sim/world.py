"""The simulated cloud: cars, the account, tokens, billing and quotas, in sim time.

The world knows nothing of HTTP. Each API operation takes the already-parsed request
(credentials, the host's region, the vehicle key, the body) and either returns the
``response`` payload or raises an :class:`~fleetlog.sim.errors.ApiError`. Before any
operation the caller moves the world to "now" with :meth:`World.advance`; the world
never asks a clock.

Modes: ``owner`` (legacy Owner API: one global host, ``client_id=ownerapi``, not billed),
``fleet`` (official Fleet API: regional hosts with 421, own app client_id, billed),
``myteslamate`` and ``teslemetry`` (providers: one global host, the provider's TOKEN on
every REST and auth request, billed as Fleet API calls behind the proxy).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random
from typing import Any, Literal
from urllib.parse import urlencode

from fleetlog.sim.auth import DEFAULT_SCOPES, Account, Grant, TokenIssuer, TokenPair
from fleetlog.sim.billing import Category, Ledger, billable
from fleetlog.sim.car import Car
from fleetlog.sim.errors import (
    BadRequest,
    Forbidden,
    InService,
    NotFound,
    OAuthError,
    RateLimited,
    Unauthorized,
    Unavailable,
    WrongRegion,
)
from fleetlog.sim.payload import DEFAULT_SECTIONS, ENDPOINTS, vehicle_data, vehicle_item
from fleetlog.sim.plan import Region
from fleetlog.sim.scenarios import Scenario
from fleetlog.sim.truth import iso

Mode = Literal["owner", "fleet", "myteslamate", "teslemetry"]
MODES: tuple[Mode, ...] = ("owner", "fleet", "myteslamate", "teslemetry")
PROVIDERS: tuple[Mode, ...] = ("myteslamate", "teslemetry")
OWNER_CLIENT_ID = "ownerapi"
JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CloudOptions:
    """How the simulated cloud behaves."""

    mode: Mode = "fleet"
    client_id: str = "0f4a8c12-5b7e-4d8e-9a3f-fleetlog-sim"  # the Fleet app's id
    client_secret: str = "ta-secret.fleetlog-sim"
    provider_token: str = "sim-provider-token"
    billing_limit_usd: float | None = 10.0  # the monthly limit; None = unlimited
    daily_data_quota: int | None = None  # per car per UTC day; the historical 200 or 300
    token_lifetime_s: int = 28_800
    wake_delay_s: tuple[float, float] = (10.0, 60.0)
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the account and, with a user token, its grant."""

    account: Account
    grant: Grant | None


@dataclass(slots=True)
class TelemetryConfig:
    config: JSON
    set_at: datetime
    errors: list[JSON] = field(default_factory=list)


class World:
    """The cloud of one scenario: see the module docstring."""

    def __init__(self, scenario: Scenario, options: CloudOptions | None = None) -> None:
        self.scenario = scenario
        self.options = options or CloudOptions()
        self.mode: Mode = self.options.mode
        self.rng = Random(f"world:{self.options.seed}")
        self.now = scenario.start
        self.cars = [Car(plan, scenario.start, scenario.weather) for plan in scenario.cars]
        self.account = Account(
            7_700_000 + self.options.seed, "driver@fleetlog.invalid", "Sim Driver", scenario.region
        )
        self.tokens = TokenIssuer(
            Random(f"tokens:{self.options.seed}"), lifetime_s=self.options.token_lifetime_s
        )
        self.ledger = Ledger()
        self.telemetry: dict[str, TelemetryConfig] = {}
        self.base_urls: dict[Region, str] = {
            "na": "https://fleet-api.prd.na.vn.cloud.tesla.com",
            "eu": "https://fleet-api.prd.eu.vn.cloud.tesla.com",
        }

    # ------------------------------------------------------------------ time

    def advance(self, to: datetime) -> None:
        """Move every car (and so the world) up to `to`."""
        if to <= self.now:
            return
        for car in self.cars:
            car.advance(to)
        self.now = to

    @property
    def client_id(self) -> str:
        return OWNER_CLIENT_ID if self.mode == "owner" else self.options.client_id

    def initial_tokens(self) -> TokenPair:
        """Tokens a logger can sign in with, as if the user had just logged in."""
        return self.tokens.issue(self.account, self.client_id, DEFAULT_SCOPES, self.now)

    # ------------------------------------------------------------------ auth

    def authenticate(self, token: str | None) -> Caller:
        """Who is asking: the user's access token, or the provider's TOKEN in provider modes."""
        if self.mode in PROVIDERS:
            if not token:
                raise Unauthorized("missing_token")
            if token != self.options.provider_token:
                raise Unauthorized("invalid_token")
            return Caller(self.account, None)
        if not token:
            raise Unauthorized("invalid bearer token")
        return Caller(self.account, self.tokens.check_access(token, self.now))

    def check_region(self, host_region: Region | None) -> None:
        """421 when a Fleet API request reaches the regional host that is not the account's."""
        if self.mode == "fleet" and host_region is not None and host_region != self.account.region:
            url = self.base_urls[self.account.region]
            raise WrongRegion(
                f"user out of region, use base URL: {url}, see "
                "https://developer.tesla.com/docs/fleet-api/getting-started/base-urls"
            )

    def check_enabled(self) -> None:
        """403 once the month's billing limit is spent (Fleet API and providers only)."""
        limit = self.options.billing_limit_usd
        if (
            self.mode != "owner"
            and limit is not None
            and self.ledger.month_cost_usd(self.now) >= limit - 1e-9
        ):
            raise Forbidden("account disabled: EXCEEDED_LIMIT")

    def check_provider_token(self, token: str | None) -> None:
        """Providers require their TOKEN on auth requests too."""
        if self.mode in PROVIDERS:
            if not token:
                raise OAuthError(
                    401, "missing_token", "Provide the provider token as Bearer or ?token=."
                )
            if token != self.options.provider_token:
                raise OAuthError(401, "invalid_token", "The provider token is not valid.")

    def token_grant(self, form: dict[str, str], provider_token: str | None) -> JSON:
        """``POST …/oauth2/v3/token``: refresh_token, authorization_code, client_credentials."""
        self.check_provider_token(provider_token)
        grant_type = form.get("grant_type", "")
        client_id = form.get("client_id")
        provider = self.mode in PROVIDERS
        if not provider and grant_type != "client_credentials" and client_id != self.client_id:
            raise OAuthError(400, "unauthorized_client", f"unknown client_id {client_id!r}")
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            if provider and not refresh:
                # The provider holds the real credentials: an empty refresh signs the logger in.
                return self.initial_tokens().to_json()
            return self.tokens.refresh(refresh, None if provider else client_id, self.now).to_json()
        if grant_type == "authorization_code":
            if self.mode == "fleet" and form.get("client_secret") != self.options.client_secret:
                raise OAuthError(401, "unauthorized_client", "client_secret is wrong")
            pair = self.tokens.exchange(
                form.get("code", ""),
                client_id or "",
                form.get("redirect_uri"),
                form.get("code_verifier"),
                self.now,
            )
            return pair.to_json(form.get("state"))
        if grant_type == "client_credentials":
            if (
                client_id != self.options.client_id
                or form.get("client_secret") != self.options.client_secret
            ):
                raise OAuthError(401, "unauthorized_client", "client_id or client_secret is wrong")
            scopes = tuple(form.get("scope", "openid").split())
            partner = Account(0, "partner@fleetlog.invalid", "Partner", self.account.region)
            pair = self.tokens.issue(
                partner, client_id, tuple(s for s in scopes if s != "offline_access"), self.now
            )
            return pair.to_json()
        raise OAuthError(400, "invalid_request", f"unsupported grant_type {grant_type!r}")

    def authorize(self, query: dict[str, str], provider_token: str | None) -> str:
        """``GET …/oauth2/v3/authorize``: the redirect URL with a code (consent is immediate)."""
        self.check_provider_token(provider_token)
        if query.get("response_type") != "code":
            raise OAuthError(400, "invalid_request", "response_type must be code")
        if "state" not in query:
            raise OAuthError(400, "invalid_request", "state is required")
        client_id = query.get("client_id", "")
        if self.mode not in PROVIDERS and client_id != self.client_id:
            raise OAuthError(400, "unauthorized_client", f"unknown client_id {client_id!r}")
        redirect = query.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            raise OAuthError(400, "invalid_redirect_url", "redirect_uri must be an absolute URL")
        scopes = tuple(query.get("scope", "openid offline_access").split())
        code = self.tokens.authorize(
            self.account, client_id, redirect, scopes, query.get("code_challenge"), self.now
        )
        sep = "&" if "?" in redirect else "?"
        issuer = "https://auth.tesla.com/oauth2/v3"
        return (
            f"{redirect}{sep}{urlencode({'code': code, 'state': query['state'], 'issuer': issuer})}"
        )

    # ------------------------------------------------------------------ REST operations

    def car(self, key: str) -> Car:
        """A car by numeric id or VIN, or 404."""
        for car in self.cars:
            if key == car.spec.vin or key == str(car.spec.id):
                return car
        raise NotFound("not_found")

    def products(self) -> list[JSON]:
        return [vehicle_item(car, car.snapshot()) for car in self.cars]

    def vehicle(self, key: str) -> JSON:
        car = self.car(key)
        return vehicle_item(car, car.snapshot())

    def vehicle_data(self, caller: Caller, key: str, endpoints: str | None) -> JSON:
        """``vehicle_data``: quota, service, sleep, then the sections.

        An answer from the car resets its idle timer.
        """
        car = self.car(key)
        self._check_quota(car)
        self.ledger.data_calls[(car.spec.id, self.now.date())] += 1
        if car.in_service:
            raise InService("vehicle is currently in service")
        if car.state != "online":
            raise Unavailable("vehicle unavailable: vehicle is offline or asleep")
        sections = self._sections(endpoints)
        if (
            "location_data" in sections
            and caller.grant is not None
            and "vehicle_location" not in caller.grant.scopes
        ):
            sections.discard("location_data")
        car.touch()
        return vehicle_data(car, car.snapshot(), sections, self.account.id)

    def _sections(self, endpoints: str | None) -> set[str]:
        if endpoints is None or not endpoints.strip():
            return set(DEFAULT_SECTIONS)
        names = {e.strip() for e in endpoints.replace(",", ";").split(";") if e.strip()}
        unknown = names - set(ENDPOINTS)
        if unknown:
            raise BadRequest("invalid_field", f"unknown endpoints: {', '.join(sorted(unknown))}")
        return names

    def _check_quota(self, car: Car) -> None:
        quota = self.options.daily_data_quota
        if quota is None or self.ledger.data_calls[(car.spec.id, self.now.date())] < quota:
            return
        midnight = datetime.combine(
            self.now.date() + timedelta(days=1), datetime.min.time(), self.now.tzinfo
        )
        wait = max(1, math.ceil((midnight - self.now).total_seconds()))
        raise RateLimited(
            f"Retry in {wait} seconds",
            headers={
                "Retry-After": str(wait),
                "RateLimit-Limit": str(quota),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(wait),
            },
        )

    def wake_up(self, key: str) -> JSON:
        """``wake_up``: an asleep car comes online 10-60 s later; the answer shows the state now."""
        car = self.car(key)
        lo, hi = self.options.wake_delay_s
        car.wake_up(self.rng.uniform(lo, hi))
        return vehicle_item(car, car.snapshot())

    def fleet_status(self, body: JSON) -> JSON:
        vins = body.get("vins")
        if not isinstance(vins, list) or not all(isinstance(v, str) for v in vins):
            raise BadRequest("invalid_field", "vins must be a list of VINs")
        paired: list[str] = []
        unpaired: list[str] = []
        info: JSON = {}
        for vin in vins:
            try:
                car = self.car(vin)
            except NotFound:
                continue
            (paired if car.spec.key_paired else unpaired).append(vin)
            info[vin] = {
                "firmware_version": car.car_version.split(" ")[0],
                "vehicle_command_protocol_required": car.spec.model_year >= 2021,
                "discounted_device_data": car.spec.model_year < 2021
                and car.spec.car_type in ("models", "modelx"),
                "fleet_telemetry_version": "1.0.0",
                "total_number_of_keys": 5,
            }
        return {"key_paired_vins": paired, "unpaired_vins": unpaired, "vehicle_info": info}

    def telemetry_config_set(self, vins: Any, config: Any) -> JSON:
        """Store a telemetry config for each paired car (the proxy or JWS path alike)."""
        if not isinstance(vins, list) or not vins:
            raise BadRequest("invalid_field", "vins must be a non-empty list")
        if (
            not isinstance(config, dict)
            or not config.get("hostname")
            or not isinstance(config.get("fields"), dict)
        ):
            raise BadRequest("invalid_field", "config needs hostname and fields")
        skipped: dict[str, list[str]] = {
            "missing_key": [],
            "unsupported_hardware": [],
            "unsupported_firmware": [],
            "max_configs": [],
        }
        updated = 0
        for vin in vins:
            car = self.car(str(vin))
            if not car.spec.key_paired:
                skipped["missing_key"].append(car.spec.vin)
                continue
            self.telemetry[car.spec.vin] = TelemetryConfig(dict(config), self.now)
            updated += 1
        return {"updated_vehicles": updated, "skipped_vehicles": skipped}

    def telemetry_config_jws(self, body: JSON) -> JSON:
        token = body.get("token")
        if not isinstance(token, str) or token.count(".") != 2:
            raise BadRequest("invalid_field", "token must be a JWS")
        try:
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))
        except (ValueError, json.JSONDecodeError):
            raise BadRequest("invalid_field", "token payload is not JSON") from None
        if claims.get("aud") != "com.tesla.fleet.TelemetryClient":
            raise BadRequest("invalid_field", "aud must be com.tesla.fleet.TelemetryClient")
        config = {k: v for k, v in claims.items() if k not in ("aud", "iss", "iat")}
        return self.telemetry_config_set(body.get("vins"), config)

    def telemetry_config_get(self, key: str) -> JSON:
        car = self.car(key)
        entry = self.telemetry.get(car.spec.vin)
        synced = True
        if entry is not None:
            # The car fetches its config the next time it is online.
            synced = (
                car.state == "online" or car.log.seconds_in("online", entry.set_at, self.now) > 0
            )
        return {
            "synced": synced,
            "config": entry.config if entry is not None else None,
            "limit_reached": False,
            "key_paired": car.spec.key_paired,
        }

    def telemetry_config_delete(self, key: str) -> JSON:
        car = self.car(key)
        self.telemetry.pop(car.spec.vin, None)
        return {"updated_vehicles": 1}

    def telemetry_errors(self, key: str) -> JSON:
        car = self.car(key)
        entry = self.telemetry.get(car.spec.vin)
        return {"fleet_telemetry_errors": list(entry.errors) if entry is not None else []}

    def region(self) -> JSON:
        return {
            "region": self.account.region,
            "fleet_api_base_url": self.base_urls[self.account.region],
        }

    def me(self) -> JSON:
        return {
            "email": self.account.email,
            "full_name": self.account.full_name,
            "profile_image_url": None,
            "vault_uuid": f"{self.account.id:032x}",
        }

    # ------------------------------------------------------------------ ledger and truth

    def record(
        self, endpoint: str, category: Category | None, status: int, *, attributable: bool
    ) -> None:
        """Book one answered call. `attributable`: it reached an enabled app (see billing.py)."""
        billed = attributable and self.mode != "owner" and billable(category, status)
        self.ledger.record(self.now, endpoint, category, status, billed=billed)

    def truth(self) -> JSON:
        """Ground truth up to now: per-car drives, charges, states, updates; the ledger."""
        return {
            "scenario": self.scenario.name,
            "mode": self.mode,
            "seed": self.options.seed,
            "start": iso(self.scenario.start),
            "end": iso(self.scenario.end),
            "now": iso(self.now),
            "cars": [
                {
                    "id": car.spec.id,
                    "vehicle_id": car.spec.vehicle_id,
                    "vin": car.spec.vin,
                    "display_name": car.spec.display_name,
                    "odometer_km": round(car.odometer_km, 4),
                    "soc": round(car.soc, 4),
                    "car_version": car.car_version,
                    **car.log.to_json(),
                }
                for car in self.cars
            ],
            "ledger": self.ledger.to_json(),
        }
