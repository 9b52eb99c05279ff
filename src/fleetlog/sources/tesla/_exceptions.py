"""Every way talking to Tesla can fail, as one exception tree.

    TeslaError
    ├── TryLater                      mixin: the call may succeed at ``retry_at`` (a datetime)
    ├── TransportError                no HTTP answer: connection refused, reset, TLS, DNS
    │   └── RequestTimeout            no answer in time                              (TryLater)
    ├── MalformedResponse             an answer that is not Tesla's JSON envelope
    ├── BudgetDeferred                the budget governor says "later, at t"         (TryLater)
    ├── WakeNotRequested              a wake_up without a user asking for it
    ├── AuthError                     sign-in and tokens
    │   ├── NotSignedIn               no tokens stored: run `fleetlog login`
    │   ├── AuthFlowError             bad redirect URL, state mismatch, expired code
    │   └── RefreshFailed             the token endpoint refused or failed           (TryLater)
    │       └── RefreshTokenSpent     the refresh token was used before or revoked
    └── ApiError                      Tesla answered with an error status
        ├── BadRequest                400
        ├── Unauthorized              401  the access token is expired or invalid
        ├── PaymentRequired           402  provider subscription or credits
        ├── Forbidden                 403
        │   ├── MissingScopes         403  "Unauthorized missing scopes"
        │   └── LimitExceeded         403  "account disabled: EXCEEDED_LIMIT"        (TryLater)
        ├── VehicleNotFound           404
        ├── VehicleInService          405
        ├── VehicleUnavailable        408  asleep or offline
        ├── PreconditionFailed        412
        ├── WrongRegion               421  carries the base URL Tesla names
        ├── RateLimited               429  Retry-After / RateLimit-Reset             (TryLater)
        ├── UnavailableForLegalReasons 451
        ├── ServerError               5xx (not billed)
        │   └── VehicleError          540  the car answered with an error
        └── UnexpectedStatus          any other status

Messages name the endpoint and Tesla's error text, never a URL with its query, a
header or a token: exceptions end up in logs and tracebacks. Tesla's own error text
is passed through the log redactor before it is kept, in case a proxy echoes a token.
"""

from __future__ import annotations

from datetime import datetime

from fleetlog.logs import redact


class TeslaError(Exception):
    """Base of every error raised by fleetlog's Tesla client, auth and budget."""


class TryLater:
    """Mixin for errors that say when the same call may succeed: ``retry_at``."""

    retry_at: datetime


class TransportError(TeslaError):
    """The request got no HTTP answer (connection, TLS or DNS failure)."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = redact(reason)
        super().__init__(f"{endpoint}: no answer from the server ({self.reason})")


class RequestTimeout(TransportError, TryLater):
    """No answer within the timeout; the request may or may not have reached Tesla."""

    def __init__(self, endpoint: str, reason: str, retry_at: datetime) -> None:
        super().__init__(endpoint, reason)
        self.retry_at = retry_at


class MalformedResponse(TeslaError):
    """The answer is not JSON or lacks Tesla's ``{"response": …}`` envelope."""

    def __init__(self, endpoint: str, status: int, detail: str) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(f"{endpoint}: HTTP {status} with a malformed body ({redact(detail)})")


class BudgetDeferred(TeslaError, TryLater):
    """The budget governor refused a paid call now; it may go at ``retry_at``."""

    def __init__(self, endpoint: str, reason: str, retry_at: datetime) -> None:
        self.endpoint = endpoint
        self.reason = reason
        self.retry_at = retry_at
        super().__init__(f"{endpoint}: deferred until {retry_at.isoformat()} ({reason})")


class WakeNotRequested(TeslaError):
    """fleetlog never wakes a car by itself; wake_up needs a user's request."""


# --- auth ---------------------------------------------------------------------------


class AuthError(TeslaError):
    """Signing in or keeping the tokens fresh failed."""


class NotSignedIn(AuthError):
    """No tokens are stored."""

    def __init__(self, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"not signed in to Tesla{extra}: run `fleetlog login` (access + refresh token) or "
            "`fleetlog login fleet` (your own developer app)"
        )


class AuthFlowError(AuthError):
    """The authorization-code flow went wrong (bad redirect URL, state, expired code)."""


class RefreshFailed(AuthError, TryLater):
    """The token refresh failed; fleetlog retries at ``retry_at`` (every 5 minutes)."""

    def __init__(self, message: str, retry_at: datetime, status: int | None = None) -> None:
        self.retry_at = retry_at
        self.status = status
        super().__init__(redact(message))


class RefreshTokenSpent(RefreshFailed):
    """The refresh token was already used (they are single use) or has been revoked."""

    ADVICE = (
        "the stored refresh token was refused as already used or revoked. Tesla refresh tokens "
        "are single use: another program (or another fleetlog/TeslaMate) may have refreshed with "
        "the same token. Sign in again with `fleetlog login` and give each program its own tokens"
    )

    def __init__(self, detail: str, retry_at: datetime, status: int | None = None) -> None:
        super().__init__(f"{self.ADVICE} (auth server said: {redact(detail)})", retry_at, status)


# --- API status errors --------------------------------------------------------------


class ApiError(TeslaError):
    """Tesla answered ``status`` with ``error`` (its short error text) for ``endpoint``."""

    def __init__(
        self,
        endpoint: str,
        status: int,
        error: str = "",
        description: str = "",
        txid: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.error = redact(error)
        self.description = redact(description)
        self.txid = txid
        text = self.error or "no error text"
        if self.description:
            text += f": {self.description}"
        super().__init__(f"{endpoint}: HTTP {status} {text}" + (f" (txid {txid})" if txid else ""))


class BadRequest(ApiError):
    """400: the request was malformed (invalid_command, invalid_field, …)."""


class Unauthorized(ApiError):
    """401: the access token expired, was revoked, or the account needs a new login."""


class PaymentRequired(ApiError):
    """402: billing (Tesla app billing, or a provider's subscription or credits)."""


class Forbidden(ApiError):
    """403: not allowed (scope, unsupported vehicle, or the account is disabled)."""


class MissingScopes(Forbidden):
    """403: the token lacks a scope the endpoint needs; sign in again granting it."""


class LimitExceeded(Forbidden, TryLater):
    """403 EXCEEDED_LIMIT: the developer app's billing limit is spent; back off 15 min."""

    def __init__(self, endpoint: str, status: int, error: str, retry_at: datetime) -> None:
        super().__init__(endpoint, status, error)
        self.retry_at = retry_at


class VehicleNotFound(ApiError):
    """404: no such vehicle on this account."""


class VehicleInService(ApiError):
    """405: the vehicle is in service."""


class VehicleUnavailable(ApiError):
    """408: the vehicle is asleep or offline; ask the free vehicle endpoint instead."""


class PreconditionFailed(ApiError):
    """412: e.g. the account is not registered in this region, or Owner API is closed."""


class WrongRegion(ApiError):
    """421: the account lives in another region; ``base_url`` is where to go."""

    def __init__(self, endpoint: str, status: int, error: str, base_url: str | None) -> None:
        super().__init__(endpoint, status, error)
        self.base_url = base_url


class RateLimited(ApiError, TryLater):
    """429: too many requests; no call of this account goes before ``retry_at``."""

    def __init__(
        self, endpoint: str, status: int, error: str, retry_at: datetime, retry_after: float
    ) -> None:
        super().__init__(endpoint, status, error)
        self.retry_at = retry_at
        self.retry_after = retry_after


class UnavailableForLegalReasons(ApiError):
    """451: privacy settings or a region rule forbid this data."""


class ServerError(ApiError):
    """5xx: Tesla or the vehicle failed; not billed; retry later."""


class VehicleError(ServerError):
    """540: the vehicle returned an error (rebooting, updating, in service)."""


class UnexpectedStatus(ApiError):
    """A status fleetlog has no specific meaning for."""
