"""Who may use the web app: the exposure check, sign-in sessions and CSRF tokens.

Rules:

* The app listens on 127.0.0.1 unless told otherwise. Listening anywhere else needs
  ``FLEETLOG_WEB_AUTH`` (``user:password``, or a bare token) or an explicit
  ``FLEETLOG_WEB_ALLOW_UNAUTHENTICATED=true`` (e.g. behind an authenticating proxy);
  :func:`check_exposure` refuses to start otherwise.
* With authentication on, a browser signs in once and carries a signed, expiring session
  cookie; scripts send ``Authorization: Basic`` (user:password) or ``Bearer <token>``.
* Every form carries a CSRF token: an HMAC of a random per-browser cookie (signed double
  submit), so another site cannot post a form on the user's behalf. The JSON API needs no
  token: its writes are PUT/DELETE or JSON bodies, which browsers only send cross-site after a
  CORS preflight this app never grants.
* The configured password or token is compared in constant time and never rendered or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Any

SESSION_COOKIE = "fleetlog_session"
CSRF_COOKIE = "fleetlog_csrf"
SESSION_SECONDS = 30 * 86400


class ExposureError(Exception):
    """The app would listen on a network address without any authentication."""


@dataclass(frozen=True, slots=True)
class Access:
    """The configured credentials (never shown anywhere)."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    allow_anonymous: bool = False

    @property
    def required(self) -> bool:
        return self.password is not None or self.token is not None

    @classmethod
    def from_setting(cls, raw: str | None, *, allow_anonymous: bool = False) -> Access:
        if not raw:
            return cls(allow_anonymous=allow_anonymous)
        user, sep, password = raw.partition(":")
        if sep:
            return cls(user=user, password=password, allow_anonymous=allow_anonymous)
        return cls(token=raw, allow_anonymous=allow_anonymous)

    def check_password(self, user: str, password: str) -> bool:
        """A sign-in form or Basic header: user:password, or (token setups) the token."""
        if self.password is not None and self.user is not None:
            same_user = hmac.compare_digest(user.encode(), self.user.encode())
            same_password = hmac.compare_digest(password.encode(), self.password.encode())
            return same_user and same_password
        if self.token is not None:
            return hmac.compare_digest(password.encode(), self.token.encode())
        return False

    def check_header(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.token is not None:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            return self.check_password(user, password)
        return False


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; a UNIX socket path counts as local too."""
    if address.startswith("/") or address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(binding: str, access: Access) -> None:
    """Refuse a network-facing address without authentication (or an explicit opt-out)."""
    if is_loopback(binding) or access.required or access.allow_anonymous:
        return
    raise ExposureError(
        f"HTTP_BINDING_ADDRESS={binding} exposes the web app beyond this machine without "
        "authentication. Set FLEETLOG_WEB_AUTH=user:password (or a token), or, behind a proxy "
        "that authenticates, FLEETLOG_WEB_ALLOW_UNAUTHENTICATED=true."
    )


class Signer:
    """HMAC-SHA256 with the app's secret key, for sessions and CSRF tokens."""

    def __init__(self, key: bytes | None = None) -> None:
        # Without a configured key, sessions last as long as the process: a restart signs
        # everyone out, which is safer than a guessable default.
        self._key = key or secrets.token_bytes(32)

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def session(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = f"v1.{expires}.{secrets.token_urlsafe(8)}"
        return f"{body}.{self._mac(body)}"

    def session_valid(self, cookie: str | None, now: float | None = None) -> bool:
        if not cookie:
            return False
        body, _, mac = cookie.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            return False
        parts = body.split(".")
        try:
            return len(parts) == 3 and int(parts[1]) > (now or time.time())
        except ValueError:
            return False

    def csrf_token(self, cookie: str) -> str:
        return self._mac("csrf." + cookie)

    def csrf_valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(cookie))


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def cookie_options(secure: bool) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}
