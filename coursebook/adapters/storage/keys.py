"""Keys: the master key, and one data key per patient wrapped by it (docs/privacy.md).

- The master key (32 random bytes, base64) comes from `COURSEBOOK_MASTER_KEY`, or else
  from a key file that `init` creates with owner-only permissions: `<store>.key` beside an
  SQLite store, `~/.config/coursebook/keys/<target>.key` for a PostgreSQL target.
- From it, HKDF derives the key-wrapping key and the integrity (HMAC) key, so neither is
  ever stored.
- Each patient's data key (AES-256-GCM) is kept wrapped in the `coursebook_keys` table.
  Erasure deletes that row for good (SQLite `secure_delete` and a WAL checkpoint,
  PostgreSQL `VACUUM FULL` of the key table): without it, the patient's ciphertexts in
  the event log can never be read again ("crypto-shredding").
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coursebook.domain.ids import patient_uuid
from coursebook.errors import StoreUnavailable

__all__ = [
    "KEY_TABLE",
    "MASTER_KEY_ENV",
    "KeyTable",
    "Keyring",
    "MasterKey",
    "configured_master_key",
    "key_file_for",
    "missing_key",
    "new_master_key_text",
]

MASTER_KEY_ENV = "COURSEBOOK_MASTER_KEY"
KEY_TABLE = "coursebook_keys"
_CHECK_ID = CHECK_ID = "master-key-check"
_CHECK_TEXT = b"coursebook master key check"
_NONCE = 12


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class MasterKey:
    """The store's master secret, and the keys derived from it."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise StoreUnavailable("the master key is too short (it must hold 32 bytes, "
                                   "base64-encoded)")
        self.wrapping = self._derive(secret, b"coursebook data-key wrapping")
        self.integrity = self._derive(secret, b"coursebook integrity")
        self.receipts = self._derive(secret, b"coursebook command receipts")

    @staticmethod
    def _derive(secret: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)

    @classmethod
    def from_text(cls, text: str, origin: str) -> MasterKey:
        """32 or more bytes, base64 (standard or URL-safe alphabet)."""
        raw = text.strip().replace("-", "+").replace("_", "/")
        try:
            secret = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise StoreUnavailable(f"the master key in {origin} is not base64") from None
        if len(secret) < 32:
            raise StoreUnavailable(f"the master key in {origin} is too short (it must "
                                   "hold 32 bytes, base64-encoded)")
        return cls(secret)

    @classmethod
    def ephemeral(cls) -> MasterKey:
        """For stores that live only in memory."""
        return cls(secrets.token_bytes(32))


def key_file_for(target: str) -> Path:
    """Where the key file of a target lives when no `COURSEBOOK_MASTER_KEY` is set."""
    if target.startswith(("postgresql://", "postgres://")):
        url = urlsplit(target)
        name = "-".join([url.hostname or "localhost", str(url.port or 5432),
                         unquote(url.path.lstrip("/")) or "postgres"])
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "coursebook" / "keys" / f"{safe}.key"
    return Path(target + ".key")


def configured_master_key(target: str | None, env: Mapping[str, str]) -> MasterKey | None:
    """`COURSEBOOK_MASTER_KEY` (from `env`, else the process environment), else the key
    file of `target`; None when neither is there."""
    text = env.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_ENV)
    if text:
        return MasterKey.from_text(text, MASTER_KEY_ENV)
    return None if target is None else read_key_file(key_file_for(target))


def missing_key(target: str) -> StoreUnavailable:
    return StoreUnavailable(f"the store's key cannot be found: set {MASTER_KEY_ENV} or put "
                            f"its key file at {key_file_for(target)}")


def read_key_file(path: Path) -> MasterKey | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise StoreUnavailable(f"cannot read the key file {path}: "
                               f"{type(error).__name__}") from None
    return MasterKey.from_text(text, f"the key file {path}")


def create_key_file(path: Path) -> MasterKey:
    """A new master key in a new file readable by its owner only (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = new_master_key_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text + "\n")
    return MasterKey.from_text(text, f"the key file {path}")


class KeyTable(Protocol):
    """Where wrapped keys are kept: beside the events, in the same database."""

    def get(self, key_id: str) -> bytes | None: ...

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes: ...

    def destroy(self, key_id: str) -> None: ...

    def count(self) -> int: ...


class MemoryKeyTable:
    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}

    def get(self, key_id: str) -> bytes | None:
        return self.rows.get(key_id)

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        return self.rows.setdefault(key_id, wrapped)

    def destroy(self, key_id: str) -> None:
        self.rows.pop(key_id, None)

    def count(self) -> int:
        return len(self.rows)


class SQLiteKeyTable:
    def __init__(self, datastore: Any, *, create: bool) -> None:
        self.datastore = datastore
        if create:
            with datastore.transaction(commit=True) as c:
                c.execute(f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} ("
                          "key_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL)")

    def get(self, key_id: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE key_id=?", (key_id,))
            row = c.fetchone()
        return None if row is None else bytes(row[0])

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"INSERT OR IGNORE INTO {KEY_TABLE} (key_id, wrapped) VALUES (?, ?)",
                      (key_id, wrapped))
            c.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE key_id=?", (key_id,))
            return bytes(c.fetchone()[0])

    def destroy(self, key_id: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete=ON")
            c.execute(f"DELETE FROM {KEY_TABLE} WHERE key_id=?", (key_id,))
        # Copy the zeroed pages into the database file and empty the write-ahead log, so
        # that no older copy of the wrapped key stays in the -wal file.
        with self.datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {KEY_TABLE} WHERE key_id<>?", (_CHECK_ID,))
            return int(c.fetchone()[0])


class PostgresKeyTable:
    def __init__(self, datastore: Any, *, create: bool) -> None:
        self.datastore = datastore
        if create:
            with datastore.transaction(commit=True) as c:
                c.execute(f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} ("
                          "key_id text PRIMARY KEY, wrapped bytea NOT NULL)")

    def get(self, key_id: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE key_id=%s", (key_id,))
            row = c.fetchone()
        return None if row is None else bytes(row["wrapped"])

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"INSERT INTO {KEY_TABLE} (key_id, wrapped) VALUES (%s, %s) "
                      "ON CONFLICT (key_id) DO NOTHING", (key_id, wrapped))
            c.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE key_id=%s", (key_id,))
            row = c.fetchone()
            return bytes(row["wrapped"])

    def destroy(self, key_id: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {KEY_TABLE} WHERE key_id=%s", (key_id,))
        # Rewrite the (small) key table so the deleted row leaves no dead tuple behind.
        with self.datastore.get_connection() as conn:
            conn.execute(f"VACUUM FULL {KEY_TABLE}")

    def count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) AS n FROM {KEY_TABLE} WHERE key_id<>%s", (_CHECK_ID,))
            row = c.fetchone()
            return int(row["n"])


class Keyring:
    """Data keys per patient, wrapped by the master key; the only way to read personal data."""

    def __init__(self, master: MasterKey) -> None:
        self.master = master
        self._wrap = AESGCM(master.wrapping)
        self._table: KeyTable = MemoryKeyTable()
        self._cache: dict[str, AESGCM | None] = {}

    def attach(self, table: KeyTable) -> None:
        """Binds the keyring to its table and proves the master key is the store's own."""
        self._table = table
        self._cache.clear()
        stored = table.get(_CHECK_ID)
        if stored is None:  # a new store: remember which master key it belongs to
            probe = self._wrap_key(_CHECK_ID, secrets.token_bytes(32) + _CHECK_TEXT)
            stored = table.put_if_absent(_CHECK_ID, probe)
        try:
            plain = self._open(_CHECK_ID, stored)
        except InvalidTag:
            raise StoreUnavailable("the master key does not open this store (check "
                                   f"{MASTER_KEY_ENV} or the store's key file)") from None
        if not plain.endswith(_CHECK_TEXT):
            raise StoreUnavailable("the master key does not open this store")

    @staticmethod
    def key_id(patient_ref: str) -> str:
        return patient_uuid(patient_ref).hex

    def _wrap_key(self, key_id: str, plain: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._wrap.encrypt(nonce, plain, key_id.encode())

    def _open(self, key_id: str, wrapped: bytes) -> bytes:
        return self._wrap.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], key_id.encode())

    def data_key(self, patient_ref: str, *, create: bool) -> AESGCM | None:
        """The patient's data key; None once shredded (or never made, unless `create`)."""
        key_id = self.key_id(patient_ref)
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        wrapped = self._table.get(key_id)
        if wrapped is None and create:
            wrapped = self._table.put_if_absent(key_id,
                                                self._wrap_key(key_id, AESGCM.generate_key(256)))
        if wrapped is None:
            return None
        try:
            key = AESGCM(self._open(key_id, wrapped))
        except InvalidTag:
            raise StoreUnavailable("a patient's data key does not open with the master "
                                   "key (the key table was changed)") from None
        self._cache[key_id] = key
        return key

    def shred(self, patient_ref: str) -> None:
        """Destroys the patient's data key for good."""
        key_id = self.key_id(patient_ref)
        self._cache.pop(key_id, None)
        self._table.destroy(key_id)

    def forget_cached(self) -> None:
        """Drops every unwrapped data key this process holds (another process erased a
        patient: its key must not outlive the erasure here either)."""
        self._cache.clear()

    def opens(self, key_id: str, wrapped: bytes) -> bool:
        """Whether a stored wrapped key opens with the master key under its own id
        (`verify` checks every one: `integrity.verify_keys`)."""
        try:
            self._open(key_id, wrapped)
        except (InvalidTag, ValueError):
            return False
        return True

    @property
    def table(self) -> KeyTable:
        return self._table

    def wrapped_key(self, patient_ref: str) -> bytes | None:
        """The stored (wrapped) data key, for tests that prove it is gone."""
        return self._table.get(self.key_id(patient_ref))

    def encrypt(self, patient_ref: str, plain: bytes) -> bytes:
        key = self.data_key(patient_ref, create=True)
        if key is None:  # pragma: no cover - create=True always yields a key
            raise StoreUnavailable("no data key")
        nonce = secrets.token_bytes(_NONCE)
        return nonce + key.encrypt(nonce, plain, patient_ref.encode())

    def decrypt(self, patient_ref: str, ciphertext: bytes) -> bytes | None:
        """The plaintext, or None when the patient's key was shredded."""
        key = self.data_key(patient_ref, create=False)
        if key is None:
            return None
        with contextlib.suppress(InvalidTag):
            return key.decrypt(ciphertext[:_NONCE], ciphertext[_NONCE:], patient_ref.encode())
        return None


def table_for(recorder: Any, *, create: bool) -> KeyTable:
    """The key table living in the same database as the application's recorder."""
    datastore = getattr(recorder, "datastore", None)
    module = type(recorder).__module__
    if datastore is not None and module == "eventsourcing.sqlite":
        return SQLiteKeyTable(datastore, create=create)
    if datastore is not None and module == "eventsourcing.postgres":
        return PostgresKeyTable(datastore, create=create)
    return MemoryKeyTable()


def uuid_hex(value: UUID | str) -> str:
    return value.hex if isinstance(value, UUID) else UUID(str(value)).hex
