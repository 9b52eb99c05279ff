"""One signed-in account, assembled from settings and the database.

``fleetlog run`` (and ``fleetlog login``) get everything they need to talk to Tesla
from :func:`open_account`: the connection profile, the token keeper (tokens from
the vault), the governor (restored from the ledger: this month's spend, today's
calls per car), the ledger and the client, all sharing one clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from fleetlog.clock import Clock
from fleetlog.logs import log_event
from fleetlog.sources.tesla._auth import TokenEndpoint
from fleetlog.sources.tesla._budget import BudgetPolicy, Governor
from fleetlog.sources.tesla._client import TeslaClient, make_api_http, make_auth_http
from fleetlog.sources.tesla._hosts import Profile, jwt_claims, resolve_profile
from fleetlog.sources.tesla._ledger import Ledger
from fleetlog.sources.tesla._pricing import usd_to_micro
from fleetlog.sources.tesla._session import TokenKeeper, TokenStore, VaultTokenStore
from fleetlog.sources.vault import Vault, load_or_create_key
from fleetlog.store.meta import read_meta, write_meta

log = logging.getLogger(__name__)

# fleetlog_meta keys remembering a 421 move: from the configured base to Tesla's choice.
_MOVED_FROM = "tesla_api_base_from"
_MOVED_TO = "tesla_api_base_to"


@dataclass(slots=True)
class TeslaAccount:
    """Everything that talks to Tesla for one account."""

    profile: Profile
    keeper: TokenKeeper
    governor: Governor
    ledger: Ledger
    client: TeslaClient
    _http: tuple[httpx.AsyncClient, ...] = ()

    async def aclose(self) -> None:
        self.ledger.flush()  # rows kept while the database was away: a last chance
        for http in self._http:
            await http.aclose()

    async def __aenter__(self) -> TeslaAccount:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def health(self, clock: Clock) -> dict[str, Any]:
        """Sign-in and budget state for the web app and MQTT (no secrets)."""
        tokens = self.keeper.health
        return {
            "signed_in": tokens.ok,
            "needs_login": tokens.needs_login,
            "token_error": tokens.error,
            "next_token_refresh_at": (
                tokens.next_refresh_at.isoformat() if tokens.next_refresh_at else None
            ),
            "api_base": self.client.api_base,
            "budget": self.governor.state(clock.now()).as_dict(),
        }


def account_label(access_token: str) -> str:
    """The ledger's account key: the token's subject (a user id, not a secret) or "default"."""
    sub = jwt_claims(access_token).get("sub")
    return str(sub)[:64] if isinstance(sub, str) and sub else "default"


def budget_policy(settings: Any, profile: Profile) -> BudgetPolicy:
    """The governor's rules from FLEETLOG_BUDGET_* and the profile's pricing."""
    return BudgetPolicy(
        monthly_cap=usd_to_micro(settings.budget_monthly_usd),
        daily_data_cap=int(settings.budget_daily_vehicle_data),
        rates=profile.pricing.rates,
        priced=profile.pricing.priced,
    )


def token_store(settings: Any, engine: sa.Engine) -> VaultTokenStore:
    """The vault-backed token store (ENCRYPTION_KEY, or the generated key file)."""
    key = load_or_create_key(settings.data_path, settings.encryption_key)
    return VaultTokenStore(engine, Vault(key.value))


def remembered_base(engine: sa.Engine, configured: str) -> str:
    """The base URL a 421 moved this account to, if it moved from `configured`."""
    with engine.connect() as conn:
        meta = read_meta(conn)
    if meta.get(_MOVED_FROM) == configured and meta.get(_MOVED_TO):
        return meta[_MOVED_TO]
    return configured


def remember_base(engine: sa.Engine, configured: str, new: str) -> None:
    with engine.begin() as conn:
        write_meta(conn, _MOVED_FROM, configured)
        write_meta(conn, _MOVED_TO, new)


async def open_account(
    settings: Any,
    engine: sa.Engine,
    *,
    clock: Clock,
    store: TokenStore | None = None,
    api_http: httpx.AsyncClient | None = None,
    auth_http: httpx.AsyncClient | None = None,
) -> TeslaAccount:
    """Sign in from the vault and build the client, governor and ledger for `settings`.

    Raises :class:`NotSignedIn` when no tokens are stored (except with a provider
    ``TOKEN``, where the provider sign-in runs), :class:`RefreshFailed` subclasses when
    stored tokens cannot be refreshed.
    """
    store = store or token_store(settings, engine)
    stored = store.load()
    profile = resolve_profile(settings, stored.access_token if stored else None)
    owned: list[httpx.AsyncClient] = []
    if auth_http is None:
        auth_http = make_auth_http()
        owned.append(auth_http)
    if api_http is None:
        api_http = make_api_http()
        owned.append(api_http)
    keeper = TokenKeeper(
        TokenEndpoint(profile, auth_http, clock),
        store,
        clock,
        provider_sign_in=bool(profile.provider_token),
    )
    try:
        await keeper.start()
    except BaseException:
        for http in owned:
            await http.aclose()
        raise
    account = account_label(keeper.access_token)
    ledger = Ledger(engine)
    now = clock.now()
    governor = Governor(
        budget_policy(settings, profile),
        now,
        spent_this_month=ledger.month_spend(account, f"{now.year:04d}-{now.month:02d}"),
        data_calls_today=ledger.data_calls_on(account, now.date()),
    )
    configured = profile.api_base

    def moved(new: str) -> None:
        remember_base(engine, configured, new)

    client = TeslaClient(
        profile,
        keeper,
        clock=clock,
        governor=governor,
        ledger=ledger,
        account=account,
        http=api_http,
        vehicle_data_endpoints=settings.vehicle_data_endpoints,
        on_base_url_change=moved,
    )
    base = remembered_base(engine, configured)
    if base != configured:
        client.move_to(base)
    log_event(
        log,
        logging.INFO,
        "tesla account ready",
        mode=profile.mode.value,
        api_base=client.api_base,
        priced=profile.pricing.priced,
    )
    return TeslaAccount(profile, keeper, governor, ledger, client, tuple(owned))
