"""Talking to Tesla over REST: sign-in, token refresh, one client, the ledger and the budget.

Public API (everything else is private to this package)::

    account = await open_account(settings, engine, clock=clock)   # tokens from the vault
    cars = await account.client.products()                 # free
    car = await account.client.vehicle(car_id)             # free: state without waking
    data = await account.client.vehicle_data(car_id)       # billed; may raise TryLater errors
    account.governor.state(clock.now())                    # spent, remaining, next call
    asyncio.create_task(account.keeper.run())              # refresh at 75 % of life

    governor = Governor(BudgetPolicy(...), now)            # pure: when may a call go?
    ledger = Ledger(engine)                                # one row per call, exact totals
"""

from fleetlog.sources.tesla._account import (
    TeslaAccount,
    budget_policy,
    open_account,
    token_store,
)
from fleetlog.sources.tesla._auth import TokenSet, authorize_url, code_from_redirect
from fleetlog.sources.tesla._budget import BudgetPolicy, BudgetState, Decision, Governor, Permit
from fleetlog.sources.tesla._client import DEFAULT_ENDPOINTS, TeslaClient
from fleetlog.sources.tesla._exceptions import (
    ApiError,
    AuthError,
    AuthFlowError,
    BadRequest,
    BudgetDeferred,
    Forbidden,
    LimitExceeded,
    MalformedResponse,
    MissingScopes,
    NotSignedIn,
    PaymentRequired,
    PreconditionFailed,
    RateLimited,
    RefreshFailed,
    RefreshTokenSpent,
    RequestTimeout,
    ServerError,
    TeslaError,
    TransportError,
    TryLater,
    Unauthorized,
    UnavailableForLegalReasons,
    UnexpectedStatus,
    VehicleError,
    VehicleInService,
    VehicleNotFound,
    VehicleUnavailable,
    WakeNotRequested,
    WrongRegion,
)
from fleetlog.sources.tesla._hosts import PRESETS, Mode, Profile, resolve_profile
from fleetlog.sources.tesla._ledger import Ledger, LedgerEntry, LedgerTotal
from fleetlog.sources.tesla._models import Region, Vehicle
from fleetlog.sources.tesla._pricing import Category, Pricing, Rates
from fleetlog.sources.tesla._session import TokenHealth, TokenKeeper, VaultTokenStore
from fleetlog.sources.tesla._signin import (
    FleetSignIn,
    SignedIn,
    sign_in_with_provider,
    sign_in_with_tokens,
)

__all__ = [
    "DEFAULT_ENDPOINTS",
    "PRESETS",
    "ApiError",
    "AuthError",
    "AuthFlowError",
    "BadRequest",
    "BudgetDeferred",
    "BudgetPolicy",
    "BudgetState",
    "Category",
    "Decision",
    "FleetSignIn",
    "Forbidden",
    "Governor",
    "Ledger",
    "LedgerEntry",
    "LedgerTotal",
    "LimitExceeded",
    "MalformedResponse",
    "MissingScopes",
    "Mode",
    "NotSignedIn",
    "PaymentRequired",
    "Permit",
    "PreconditionFailed",
    "Pricing",
    "Profile",
    "RateLimited",
    "Rates",
    "RefreshFailed",
    "RefreshTokenSpent",
    "Region",
    "RequestTimeout",
    "ServerError",
    "SignedIn",
    "TeslaAccount",
    "TeslaClient",
    "TeslaError",
    "TokenHealth",
    "TokenKeeper",
    "TokenSet",
    "TransportError",
    "TryLater",
    "Unauthorized",
    "UnavailableForLegalReasons",
    "UnexpectedStatus",
    "VaultTokenStore",
    "Vehicle",
    "VehicleError",
    "VehicleInService",
    "VehicleNotFound",
    "VehicleUnavailable",
    "WakeNotRequested",
    "WrongRegion",
    "authorize_url",
    "budget_policy",
    "code_from_redirect",
    "open_account",
    "resolve_profile",
    "sign_in_with_provider",
    "sign_in_with_tokens",
    "token_store",
]
