"""The token vault: Cloak-compatible bytes, wrong keys, key file, stored tokens."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fleetlog.sources.vault import (
    Tokens,
    Vault,
    VaultFormatError,
    VaultKeyError,
    load_or_create_key,
    load_tokens,
    save_tokens,
)
from fleetlog.store import tables

KEY = "correct horse battery staple"
ACCESS = "eyJhbGciOi.access-token.secret"
REFRESH = "NA_refresh-token-secret"


def _cloak_blob(key: str, plaintext: str, iv: bytes) -> bytes:
    """Built from the documented layout only: 0x01 0x0A "AES.GCM.V1" | IV | tag | ciphertext."""
    sealed = AESGCM(hashlib.sha256(key.encode()).digest()).encrypt(
        iv, plaintext.encode(), b"AES256GCM"
    )
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return bytes([0x01, 0x0A]) + b"AES.GCM.V1" + iv + tag + ciphertext


def test_round_trip() -> None:
    vault = Vault(KEY)
    blob = vault.encrypt(ACCESS)
    assert vault.decrypt(blob) == ACCESS
    assert vault.encrypt(ACCESS) != blob  # fresh IV each time
    assert Vault(KEY).decrypt(blob) == ACCESS
    assert vault.decrypt(vault.encrypt("")) == ""
    assert vault.decrypt(vault.encrypt("ünï ✓")) == "ünï ✓"


def test_hand_built_cloak_value_decrypts() -> None:
    blob = _cloak_blob(KEY, ACCESS, iv=bytes(range(12)))
    assert Vault(KEY).decrypt(blob) == ACCESS


def test_vault_output_matches_the_layout() -> None:
    blob = Vault(KEY).encrypt(REFRESH)
    assert blob[:2] == b"\x01\x0a"
    assert blob[2:12] == b"AES.GCM.V1"
    iv, tag, ciphertext = blob[12:24], blob[24:40], blob[40:]
    assert len(ciphertext) == len(REFRESH.encode())
    aead = AESGCM(hashlib.sha256(KEY.encode()).digest())
    assert aead.decrypt(iv, ciphertext + tag, b"AES256GCM") == REFRESH.encode()
    # Re-encrypting with the same IV reproduces the vault's bytes exactly.
    assert _cloak_blob(KEY, REFRESH, iv) == blob


def test_wrong_key_is_a_clear_error_without_secrets() -> None:
    blob = Vault(KEY).encrypt(ACCESS)
    with pytest.raises(VaultKeyError) as caught:
        Vault("another key").decrypt(blob)
    message = str(caught.value)
    assert "ENCRYPTION_KEY does not match the key the tokens were stored with" in message
    assert KEY not in message and ACCESS not in message and "another key" not in message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    "blob",
    [b"", b"plain text token", b"\x01\x0aAES.GCM.V2" + bytes(40), b"\x01\x0aAES.GCM.V1" + bytes(5)],
)
def test_not_a_cloak_value(blob: bytes) -> None:
    with pytest.raises(VaultFormatError):
        Vault(KEY).decrypt(blob)


def test_tampered_value_is_rejected() -> None:
    blob = bytearray(Vault(KEY).encrypt(ACCESS))
    blob[-1] ^= 1
    with pytest.raises(VaultKeyError):
        Vault(KEY).decrypt(bytes(blob))


def test_repr_hides_secrets() -> None:
    assert KEY not in repr(Vault(KEY))
    tokens = Tokens(
        access=ACCESS,
        refresh=REFRESH,
        inserted_at=datetime(2024, 1, 1),
        updated_at=datetime(2024, 1, 1),
    )
    for text in (repr(tokens), str(tokens)):
        assert ACCESS not in text and REFRESH not in text
        assert "<hidden>" in text


def test_key_file_created_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data" / "nested"
    with caplog.at_level(logging.INFO, logger="fleetlog.sources.vault"):
        first = load_or_create_key(data_dir)
    assert first.created
    assert first.path == data_dir / "encryption.key"
    assert first.path.exists()
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    assert len(first.value) >= 32
    assert first.value not in caplog.text
    assert str(first.path) in caplog.text
    assert first.value not in repr(first)

    second = load_or_create_key(data_dir)
    assert not second.created
    assert second.value == first.value
    assert second.path == first.path
    assert first.value not in caplog.text


def test_configured_key_wins(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path, configured="from-env")
    assert (key.value, key.path, key.created) == ("from-env", None, False)
    assert not (tmp_path / "encryption.key").exists()


def test_tokens_saved_and_loaded(migrated_engine: sa.Engine) -> None:
    vault = Vault(KEY)
    assert load_tokens(migrated_engine, vault) is None
    t0 = datetime(2024, 5, 1, 10, 0, 0, 999999, tzinfo=UTC)
    save_tokens(migrated_engine, vault, ACCESS, REFRESH, now=t0)
    got = load_tokens(migrated_engine, vault)
    assert got is not None
    assert (got.access, got.refresh) == (ACCESS, REFRESH)
    assert got.inserted_at == got.updated_at == datetime(2024, 5, 1, 10, 0, 0)

    # Refreshing updates the one row in place.
    t1 = datetime(2024, 5, 1, 18, 0, 0, tzinfo=UTC)
    save_tokens(migrated_engine, vault, "new-access", "new-refresh", now=t1)
    with migrated_engine.connect() as conn:
        rows = conn.execute(sa.select(tables.tokens)).all()
    assert len(rows) == 1
    assert ACCESS.encode() not in bytes(rows[0].access)  # encrypted at rest
    got = load_tokens(migrated_engine, vault)
    assert got is not None
    assert (got.access, got.refresh) == ("new-access", "new-refresh")
    assert got.inserted_at == datetime(2024, 5, 1, 10, 0, 0)
    assert got.updated_at == datetime(2024, 5, 1, 18, 0, 0)


def test_wrong_key_leaves_stored_tokens_untouched(migrated_engine: sa.Engine) -> None:
    save_tokens(migrated_engine, Vault(KEY), ACCESS, REFRESH)
    with migrated_engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(sa.select(tables.tokens)).all()]
    with pytest.raises(VaultKeyError, match="ENCRYPTION_KEY does not match"):
        load_tokens(migrated_engine, Vault("wrong"))
    with migrated_engine.connect() as conn:
        after = [tuple(r) for r in conn.execute(sa.select(tables.tokens)).all()]
    assert [(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in after] == [
        (r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in before
    ]
    got = load_tokens(migrated_engine, Vault(KEY))
    assert got is not None and got.access == ACCESS


def test_reads_tokens_written_by_teslamate(migrated_engine: sa.Engine) -> None:
    """A row as TeslaMate writes it (hand-built Cloak values) loads through the vault."""
    when = datetime(2023, 1, 2, 3, 4, 5)
    with migrated_engine.begin() as conn:
        conn.execute(
            tables.tokens.insert().values(
                inserted_at=when,
                updated_at=when,
                access=_cloak_blob(KEY, ACCESS, os.urandom(12)),
                refresh=_cloak_blob(KEY, REFRESH, os.urandom(12)),
            )
        )
    got = load_tokens(migrated_engine, Vault(KEY))
    assert got is not None
    assert (got.access, got.refresh, got.inserted_at) == (ACCESS, REFRESH, when)
