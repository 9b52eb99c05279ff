"""The token vault: Tesla tokens encrypted at rest, byte-compatible with TeslaMate.

TeslaMate stores the access and refresh tokens in `private.tokens` encrypted with Cloak's
AES-GCM cipher, and fleetlog must read what TeslaMate wrote (and vice versa). Each stored value
is laid out as::

    0x01 0x0A "AES.GCM.V1" | IV (12 bytes) | GCM tag (16 bytes) | ciphertext

with AES-256-GCM, key = SHA-256 of the `ENCRYPTION_KEY` string (UTF-8), and the ASCII string
`AES256GCM` as additional authenticated data. (The `cryptography` library returns
ciphertext‖tag; the tag is moved in front of the ciphertext here.)

Nothing in this module ever logs or puts into an exception message a key, a token or a
plaintext; `Vault` and `Tokens` hide their secrets in `repr`.

Error hierarchy::

    VaultError            anything the vault cannot do
     ├── VaultKeyError    the value does not decrypt with this key (wrong ENCRYPTION_KEY)
     └── VaultFormatError the value is not a Cloak AES.GCM.V1 blob (or not UTF-8 inside)
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fleetlog.store.errors import StoreError
from fleetlog.store.tables import tokens as tokens_table

log = logging.getLogger(__name__)

#: Cloak's key tag: type byte 1, tag length 10, then the tag itself.
HEADER = b"\x01\x0a" + b"AES.GCM.V1"
#: Additional authenticated data Cloak's AES.GCM cipher uses.
AAD = b"AES256GCM"
IV_LEN = 12
TAG_LEN = 16
#: File in the data directory holding a generated key (when ENCRYPTION_KEY is not set).
KEY_FILE_NAME = "encryption.key"


class VaultError(Exception):
    """The vault could not encrypt or decrypt a value."""


class VaultKeyError(VaultError):
    """A stored value does not decrypt with the configured key."""


class VaultFormatError(VaultError):
    """A stored value is not in Cloak's AES.GCM.V1 layout."""


def _key_bytes(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Vault:
    """Encrypts and decrypts strings the way TeslaMate's Cloak vault does."""

    __slots__ = ("_aead",)

    def __init__(self, key: str) -> None:
        if not key:
            raise VaultError("the encryption key must not be empty")
        self._aead = AESGCM(_key_bytes(key))

    def __repr__(self) -> str:
        return "Vault(key=<hidden>)"

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt `plaintext` with a fresh random IV into Cloak's byte layout."""
        iv = os.urandom(IV_LEN)
        sealed = self._aead.encrypt(iv, plaintext.encode("utf-8"), AAD)
        ciphertext, tag = sealed[:-TAG_LEN], sealed[-TAG_LEN:]
        return HEADER + iv + tag + ciphertext

    def decrypt(self, blob: bytes) -> str:
        """Decrypt a Cloak AES.GCM.V1 value; a wrong key raises :class:`VaultKeyError`."""
        blob = bytes(blob)  # psycopg hands bytea over as memoryview
        if not blob.startswith(HEADER) or len(blob) < len(HEADER) + IV_LEN + TAG_LEN:
            raise VaultFormatError(
                "stored token is not an AES.GCM.V1 value (was it written by TeslaMate/fleetlog?)"
            )
        body = blob[len(HEADER) :]
        iv, tag, ciphertext = (
            body[:IV_LEN],
            body[IV_LEN : IV_LEN + TAG_LEN],
            body[IV_LEN + TAG_LEN :],
        )
        try:
            plaintext = self._aead.decrypt(iv, ciphertext + tag, AAD)
        except InvalidTag:
            raise VaultKeyError(
                "ENCRYPTION_KEY does not match the key the tokens were stored with (or the"
                " stored tokens are corrupted). Set ENCRYPTION_KEY to the key used when the"
                " tokens were saved, or sign in again to store new tokens."
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise VaultFormatError("decrypted token is not UTF-8 text") from None


@dataclass(frozen=True, slots=True, repr=False)
class EncryptionKey:
    """The key in use and where it came from (`path` is None when it came from the environment)."""

    value: str
    path: Path | None
    created: bool

    def __repr__(self) -> str:
        return f"EncryptionKey(value=<hidden>, path={self.path!r}, created={self.created!r})"


def load_or_create_key(data_dir: Path, configured: str | None = None) -> EncryptionKey:
    """The encryption key: `configured` (ENCRYPTION_KEY) if set, else `<data_dir>/encryption.key`.

    The file is created once (mode 0600, directory created as needed) with a random key and
    reused afterwards, so tokens survive restarts even when ENCRYPTION_KEY is not set.
    """
    if configured:
        return EncryptionKey(value=configured, path=None, created=False)
    path = Path(data_dir).expanduser() / KEY_FILE_NAME
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        # O_EXCL: if another process got there first, use its key rather than overwrite it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = path.read_text(encoding="utf-8").strip()
        if not existing:
            raise VaultError(f"key file {path} is empty; delete it or set ENCRYPTION_KEY") from None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("encryption key file readable by others path=%s mode=%o", path, mode)
        log.info("encryption key loaded path=%s", path)
        return EncryptionKey(value=existing, path=path, created=False)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    log.warning(
        "encryption key generated path=%s: ENCRYPTION_KEY is not set; keep this file (or set"
        " ENCRYPTION_KEY to its content), without it the stored Tesla tokens cannot be read",
        path,
    )
    return EncryptionKey(value=key, path=path, created=True)


@dataclass(frozen=True, slots=True, repr=False)
class Tokens:
    """Decrypted Tesla tokens as stored in the tokens table."""

    access: str
    refresh: str | None
    inserted_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        refresh = "None" if self.refresh is None else "<hidden>"
        return (
            f"Tokens(access=<hidden>, refresh={refresh},"
            f" inserted_at={self.inserted_at!r}, updated_at={self.updated_at!r})"
        )


def _utc_seconds(now: datetime | None) -> datetime:
    # The columns are timestamp(0) holding UTC: naive, whole seconds.
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _token_ids(conn: sa.Connection) -> list[int]:
    ids = list(conn.execute(sa.select(tokens_table.c.id).order_by(tokens_table.c.id)).scalars())
    if len(ids) > 1:
        raise StoreError(
            f"the tokens table holds {len(ids)} rows; expected at most one. Delete the stale"
            " rows (keep the newest) and sign in again if needed."
        )
    return ids


def save_tokens(
    engine: sa.Engine,
    vault: Vault,
    access: str,
    refresh: str | None,
    *,
    now: datetime | None = None,
) -> None:
    """Encrypt and store the tokens: one row, updated in place (`inserted_at` kept)."""
    moment = _utc_seconds(now)
    values = {
        "access": vault.encrypt(access),
        "refresh": None if refresh is None else vault.encrypt(refresh),
        "updated_at": moment,
    }
    with engine.begin() as conn:
        ids = _token_ids(conn)
        if ids:
            conn.execute(tokens_table.update().where(tokens_table.c.id == ids[0]).values(values))
        else:
            conn.execute(tokens_table.insert().values(inserted_at=moment, **values))
    log.info("tokens saved refresh_token=%s", "yes" if refresh is not None else "no")


def load_tokens(engine: sa.Engine, vault: Vault) -> Tokens | None:
    """The stored tokens, decrypted; None when none are stored.

    Raises :class:`VaultKeyError` when they were stored with another key; the stored values
    are left exactly as they are.
    """
    with engine.connect() as conn:
        _token_ids(conn)
        row = conn.execute(sa.select(tokens_table)).first()
    if row is None or row.access is None:
        return None
    return Tokens(
        access=vault.decrypt(row.access),
        refresh=None if row.refresh is None else vault.decrypt(row.refresh),
        inserted_at=row.inserted_at,
        updated_at=row.updated_at,
    )
