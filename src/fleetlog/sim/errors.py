"""The errors the simulated cloud answers with, as Tesla words them (reference §1.5).

    ApiError                      {"response": null, "error": …, "error_description": …, "txid": …}
    ├── BadRequest          400   invalid_request, invalid_field, invalid_auth_code, …
    ├── Unauthorized        401   token expired (401), invalid bearer token, missing_token, …
    ├── Forbidden           403   account disabled: EXCEEDED_LIMIT, Unauthorized missing scopes
    ├── NotFound            404   not_found
    ├── NotJson             406   not_a_JSON_request
    ├── InService           405   vehicle is currently in service
    ├── Unavailable         408   vehicle unavailable: vehicle is offline or asleep
    ├── WrongRegion         421   user out of region, use base URL: …
    └── RateLimited         429   Retry in N seconds (+ Retry-After, RateLimit-*)
    OAuthError                    the token endpoint's shape: {"error": …, "error_description": …}

The world raises them; the HTTP layer turns them into status, body and headers.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answer of the Fleet/Owner API."""

    status = 500

    def __init__(
        self, error: str, description: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class NotJson(ApiError):
    """A request body that is not JSON."""

    status = 406

    def __init__(self) -> None:
        super().__init__("not_a_JSON_request", "the body must be JSON")


class InService(ApiError):
    status = 405


class Unavailable(ApiError):
    status = 408


class WrongRegion(ApiError):
    status = 421


class RateLimited(ApiError):
    status = 429


class OAuthError(ApiError):
    """An error of the token or authorize endpoint (no ``response`` envelope)."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(error, description)
        self.status = status
