"""Keys: the master key, and one data key per patient wrapped by it (docs/privacy.md).

- The master key (32 random bytes, base64) comes from `COURSEBOOK_MASTER_KEY`, or else
  from a key file that `init` creates with owner-only permissions: `<store>.key` beside an
  SQLite store, `~/.config/coursebook/keys/<target>.key` for a PostgreSQL target.
- From it, HKDF derives the key-wrapping key and the integrity (HMAC) key, so neither is
  ever stored.
- Each patient's data key (AES-256-GCM) is kept wrapped in the `coursebook_keys` table.
  Erasure deletes that row for good (SQLite `secure_delete` and a WAL checkpoint,
  PostgreSQL `VACUUM FULL` of the key table): without it, the patient's ciphertexts in
  the event log can never be read again ("crypto-shredding"). An erasure whose old copies
  cannot be scrubbed yet (a reader holds an older snapshot, a lock is held) is recorded
  in `coursebook_pending_erasures` and completed at the next opportunity.
- A key file is refused when its permissions let anyone but its owner read it (as ssh
  refuses a private key). Each PostgreSQL schema has a key file of its own.
- Rotation re-wraps every stored key under a new master key in one transaction; the
  integrity and receipt keys stay derived from the store's first master key (its "root",
  kept wrapped in the key table once the master key has been rotated), so no event is
  touched.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
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
    "PENDING_TABLE",
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
PENDING_TABLE = "coursebook_pending_erasures"
_CHECK_ID = CHECK_ID = "master-key-check"
_ROOT_ID = ROOT_ID = "integrity-root"
"""The row that keeps the store's first master key (wrapped) once it has been rotated:
the integrity and receipt keys are derived from it, so tags stay valid."""
SCRUB_WAIT_MS = 1000
"""How long an erasure waits for a lock or a reader before recording itself as pending."""
_CHECK_TEXT = b"coursebook master key check"
_NONCE = 12


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class MasterKey:
    """The store's master secret, and the keys derived from it."""

    def __init__(self, secret: bytes, root: bytes | None = None) -> None:
        if len(secret) < 32:
            raise StoreUnavailable("the master key is too short (it must hold 32 bytes, "
                                   "base64-encoded)")
        self.secret = secret
        self.root = root or secret
        """What the integrity and receipt keys derive from: the store's first master key
        (the same as `secret` until the master key is rotated)."""
        self.wrapping = self._derive(secret, b"coursebook data-key wrapping")
        self.integrity = self._derive(self.root, b"coursebook integrity")
        self.receipts = self._derive(self.root, b"coursebook command receipts")

    def rooted(self, root: bytes) -> MasterKey:
        """This master key over a store whose first master key was `root`."""
        return MasterKey(self.secret, root)

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


def _schema_of(target: str) -> str:
    values = [v for k, v in (part.partition("=")[::2]
                             for part in urlsplit(target).query.split("&")) if k == "schema"]
    return values[-1] if values and values[-1] else "public"


def key_file_for(target: str, *, shared: bool = False) -> Path:
    """Where the key file of a target lives when no `COURSEBOOK_MASTER_KEY` is set: for
    PostgreSQL, one per schema (`<host>-<port>-<db>.key` for `public`,
    `<host>-<port>-<db>-<schema>.key` otherwise). `shared`: the file every schema of a
    database used before keys were kept per schema."""
    if target.startswith(("postgresql://", "postgres://")):
        url = urlsplit(target)
        parts = [url.hostname or "localhost", str(url.port or 5432),
                 unquote(url.path.lstrip("/")) or "postgres"]
        schema = _schema_of(target)
        if schema != "public" and not shared:
            parts.append(schema)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "coursebook" / "keys" / f"{safe}.key"
    return Path(target + ".key")


def configured_master_key(target: str | None, env: Mapping[str, str], *,
                          legacy: bool = True) -> MasterKey | None:
    """`COURSEBOOK_MASTER_KEY` (from `env`, else the process environment), else the key
    file of `target`; None when neither is there. `legacy`: a PostgreSQL schema whose own
    key file is missing may still use the file its database's schemas once shared (the
    key check proves it is this store's)."""
    text = env.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_ENV)
    if text:
        return MasterKey.from_text(text, MASTER_KEY_ENV)
    if target is None:
        return None
    found = read_key_file(key_file_for(target))
    if found is None and legacy and key_file_for(target, shared=True) != key_file_for(target):
        found = read_key_file(key_file_for(target, shared=True))
    return found


def missing_key(target: str) -> StoreUnavailable:
    return StoreUnavailable(f"the store's key cannot be found: set {MASTER_KEY_ENV} or put "
                            f"its key file at {key_file_for(target)}")


def check_key_file_mode(path: Path) -> None:
    """Refuses a key file that anyone but its owner may read or write, as ssh refuses
    a private key: the master key must not be readable by other users of the machine."""
    if os.name != "posix":  # pragma: no cover - POSIX permissions only
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # reading it will say why
    if mode & 0o077:
        raise StoreUnavailable(f"permissions {mode:04o} for the key file {path} are too "
                               "open: it must be readable by its owner only (run: chmod 600 "
                               f"{path})")


def read_key_file(path: Path) -> MasterKey | None:
    try:
        check_key_file_mode(path)
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


def replace_key_file(path: Path, text: str) -> None:
    """Writes `text` as the key file at `path`, owner-only, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text.strip() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


Pending = dict[str, Any]
"""A pending erasure (or rotation): `{"kind", "patient_ref", "since", "reason"}`."""

STILL_SCRUBBING = "not yet scrubbed"


class KeyTable(Protocol):
    """Where wrapped keys are kept: beside the events, in the same database."""

    def get(self, key_id: str) -> bytes | None: ...

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes: ...

    def put_all_if_absent(self, rows: Mapping[str, bytes]) -> dict[str, bytes]:
        """`put_if_absent` of each row, in one transaction: what each key_id holds."""

    def destroy(self, key_id: str, patient_ref: str, since: str) -> None:
        """Deletes the key and records the erasure as pending, in one transaction."""

    def complete(self, wait_ms: int) -> list[Pending]:
        """Scrubs the store's files of the old copies of the pending erasures' keys;
        returns those still pending (with why)."""

    def pending(self) -> list[Pending]: ...

    def rewrap(self, transform: Callable[[str, bytes], bytes],
               add: Mapping[str, bytes], since: str) -> int:
        """Replaces every wrapped value by `transform(key_id, wrapped)` and adds `add`,
        atomically, recording the old copies as pending a scrub; returns the count."""

    def count(self) -> int: ...


class MemoryKeyTable:
    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}

    def get(self, key_id: str) -> bytes | None:
        return self.rows.get(key_id)

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        return self.rows.setdefault(key_id, wrapped)

    def put_all_if_absent(self, rows: Mapping[str, bytes]) -> dict[str, bytes]:
        return {key_id: self.rows.setdefault(key_id, wrapped)
                for key_id, wrapped in rows.items()}

    def destroy(self, key_id: str, patient_ref: str, since: str) -> None:
        self.rows.pop(key_id, None)

    def complete(self, wait_ms: int) -> list[Pending]:
        return []

    def pending(self) -> list[Pending]:
        return []

    def rewrap(self, transform: Callable[[str, bytes], bytes],
               add: Mapping[str, bytes], since: str) -> int:
        rows = {k: transform(k, v) for k, v in self.rows.items()}
        rows.update(add)
        self.rows = rows
        return len(rows)

    def count(self) -> int:
        return len(set(self.rows) - {_CHECK_ID, _ROOT_ID})


def _pending(rows: list[Any]) -> list[Pending]:
    return [{"kind": "rotation" if row[0].startswith("rotation:") else "erasure",
             "patient_ref": row[1] or None, "since": row[2], "reason": row[3]}
            for row in rows]


class _SQLTable:
    """What the SQLite and PostgreSQL key tables share."""

    datastore: Any
    param = "?"

    def _pending_rows(self) -> list[Any]:
        raise NotImplementedError

    def pending(self) -> list[Pending]:
        return _pending(self._pending_rows())

    def complete(self, wait_ms: int) -> list[Pending]:
        rows = self._pending_rows()
        if not rows:
            return []
        reason = self._scrub(wait_ms, rows)
        p = self.param
        with self.datastore.transaction(commit=True) as c:
            for row in rows:
                if reason is None:
                    c.execute(f"DELETE FROM {PENDING_TABLE} WHERE key_id={p}", (row[0],))
                else:
                    c.execute(f"UPDATE {PENDING_TABLE} SET reason={p} WHERE key_id={p}",
                              (reason, row[0]))
        return [] if reason is None else self.pending()

    def _scrub(self, wait_ms: int, rows: list[Any]) -> str | None:
        raise NotImplementedError


_IDS_PER_QUERY = 500


class SQLiteKeyTable(_SQLTable):
    def __init__(self, datastore: Any, *, create: bool) -> None:
        self.datastore = datastore
        if create:
            with datastore.transaction(commit=True) as c:
                c.execute(f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} ("
                          "key_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL)")
                self._create_pending(c)

    @staticmethod
    def _create_pending(c: Any) -> None:
        c.execute(f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (key_id TEXT PRIMARY KEY, "
                  "patient_ref TEXT, since TEXT NOT NULL, reason TEXT NOT NULL)")

    def get(self, key_id: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE key_id=?", (key_id,))
            row = c.fetchone()
        return None if row is None else bytes(row[0])

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        with self.datastore.transaction(commit=True) as c:
            # Zero what a page split frees, so no stray copy of a key outlives its row.
            c.execute("PRAGMA secure_delete=ON")
            c.execute(f"INSERT OR IGNORE INTO {KEY_TABLE} (key_id, wrapped) VALUES (?, ?)",
                      (key_id, wrapped))
            c.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE key_id=?", (key_id,))
            return bytes(c.fetchone()[0])

    def put_all_if_absent(self, rows: Mapping[str, bytes]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        ids = list(rows)
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete=ON")
            c.executemany(f"INSERT OR IGNORE INTO {KEY_TABLE} (key_id, wrapped) "
                          "VALUES (?, ?)", list(rows.items()))
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start:start + _IDS_PER_QUERY]
                c.execute(f"SELECT key_id, wrapped FROM {KEY_TABLE} WHERE key_id IN "
                          f"({', '.join('?' * len(chunk))})", chunk)
                found.update((str(row[0]), bytes(row[1])) for row in c.fetchall())
        return found

    def destroy(self, key_id: str, patient_ref: str, since: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete=ON")
            self._create_pending(c)
            c.execute(f"INSERT OR IGNORE INTO {PENDING_TABLE} VALUES (?, ?, ?, ?)",
                      (key_id, patient_ref, since, STILL_SCRUBBING))
            c.execute(f"DELETE FROM {KEY_TABLE} WHERE key_id=?", (key_id,))

    def _pending_rows(self) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?",
                      (PENDING_TABLE,))
            if not c.fetchone()[0]:
                return []
            c.execute(f"SELECT key_id, patient_ref, since, reason FROM {PENDING_TABLE} "
                      "ORDER BY since, key_id")
            return [tuple(row) for row in c.fetchall()]

    def _scrub(self, wait_ms: int, rows: list[Any]) -> str | None:
        """Copies the zeroed pages into the database file and empties the write-ahead log
        (which holds older images of the key's page). A reader still inside an older
        snapshot keeps the log from being emptied: then it is not done."""
        restore = int(1000 * (getattr(self.datastore.pool, "lock_timeout", None) or 5))
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = cursor.fetchone()[0]
            finally:
                cursor.execute(f"PRAGMA busy_timeout={restore}")
        if busy:
            return ("another connection is reading an older state of the store; the "
                    "write-ahead log still holds old copies")
        return None

    def rewrap(self, transform: Callable[[str, bytes], bytes],
               add: Mapping[str, bytes], since: str) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete=ON")
            self._create_pending(c)
            c.execute(f"SELECT key_id, wrapped FROM {KEY_TABLE}")
            rows = [(str(r[0]), bytes(r[1])) for r in c.fetchall()]
            for key_id, wrapped in rows:
                c.execute(f"UPDATE {KEY_TABLE} SET wrapped=? WHERE key_id=?",
                          (transform(key_id, wrapped), key_id))
            for key_id, wrapped in add.items():
                c.execute(f"INSERT INTO {KEY_TABLE} (key_id, wrapped) VALUES (?, ?)",
                          (key_id, wrapped))
            c.execute(f"INSERT OR IGNORE INTO {PENDING_TABLE} VALUES (?, NULL, ?, ?)",
                      (f"rotation:{since}", since, STILL_SCRUBBING))
        return len(rows) + len(add)

    def count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {KEY_TABLE} WHERE key_id NOT IN (?, ?)",
                      (_CHECK_ID, _ROOT_ID))
            return int(c.fetchone()[0])


_OLDER_SNAPSHOTS = """
SELECT (CASE WHEN txid_snapshot_xmin(txid_current_snapshot()) <= %(full)s THEN 1 ELSE 0 END)
     + (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
          AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
          AND age(backend_xmin) >= age(%(xid)s::text::xid))
     + (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()
          AND age(transaction) >= age(%(xid)s::text::xid))
     + (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL
          AND age(xmin) >= age(%(xid)s::text::xid)) AS n
"""
"""Snapshots (sessions, prepared transactions, replication slots) that may still see a
row deleted by transaction `xid`, or transactions as old as it still running anywhere on
the server (a snapshot taken now would have an `xmin` at or before it, and the cleanup
horizon follows `xmin`): while one exists, `VACUUM FULL` keeps the row. Once none does,
no later snapshot can hold it back either."""


class PostgresKeyTable(_SQLTable):
    param = "%s"

    def __init__(self, datastore: Any, *, create: bool) -> None:
        self.datastore = datastore
        if create:
            with datastore.transaction(commit=True) as c:
                c.execute(f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} ("
                          "key_id text PRIMARY KEY, wrapped bytea NOT NULL)")
                self._create_pending(c)

    @staticmethod
    def _create_pending(c: Any) -> None:
        c.execute(f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (key_id text PRIMARY KEY, "
                  "patient_ref text, since text NOT NULL, reason text NOT NULL, "
                  "xid bigint NOT NULL)")

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

    def put_all_if_absent(self, rows: Mapping[str, bytes]) -> dict[str, bytes]:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(f"INSERT INTO {KEY_TABLE} (key_id, wrapped) VALUES (%s, %s) "
                          "ON CONFLICT (key_id) DO NOTHING", list(rows.items()))
            c.execute(f"SELECT key_id, wrapped FROM {KEY_TABLE} WHERE key_id = ANY(%s)",
                      (list(rows),))
            return {str(row["key_id"]): bytes(row["wrapped"]) for row in c.fetchall()}

    def _ensure_pending_table(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT to_regclass(%s) AS t", (PENDING_TABLE,))
            if c.fetchone()["t"] is None:
                self._create_pending(c)

    def destroy(self, key_id: str, patient_ref: str, since: str) -> None:
        self._ensure_pending_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SET LOCAL lock_timeout = '{SCRUB_WAIT_MS}ms'")
            c.execute(f"INSERT INTO {PENDING_TABLE} VALUES (%s, %s, %s, %s, "
                      "txid_current()) ON CONFLICT (key_id) DO UPDATE SET xid = "
                      "txid_current()", (key_id, patient_ref, since, STILL_SCRUBBING))
            c.execute(f"DELETE FROM {KEY_TABLE} WHERE key_id=%s", (key_id,))

    def _pending_rows(self) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT to_regclass(%s) AS t", (PENDING_TABLE,))
            if c.fetchone()["t"] is None:
                return []
            c.execute(f"SELECT key_id, patient_ref, since, reason, xid FROM {PENDING_TABLE} "
                      "ORDER BY since, key_id")
            return [(r["key_id"], r["patient_ref"], r["since"], r["reason"], r["xid"])
                    for r in c.fetchall()]

    def _scrub(self, wait_ms: int, rows: list[Any]) -> str | None:
        """Rewrites the (small) key table so the deleted rows leave no dead tuple behind,
        unless a snapshot that may still see them exists (then `VACUUM FULL` would keep
        them: not done). Waits at most `wait_ms` for its lock, so that it never holds
        up other patients' reads for longer."""
        from eventsourcing.persistence import PersistenceError

        full = max(int(row[4]) for row in rows)
        try:
            with self.datastore.get_connection() as conn:
                older = conn.execute(_OLDER_SNAPSHOTS,
                                     {"xid": full % 2**32, "full": full}).fetchone()
                if older and (older["n"] if isinstance(older, dict) else older[0]):
                    return ("a transaction holds a snapshot older than the erasure (e.g. "
                            "a pg_dump); the old row cannot be removed yet")
                # (0 would mean: wait for ever)
                conn.execute(f"SET lock_timeout = '{max(int(wait_ms), 1)}ms'")
                try:
                    conn.execute(f"VACUUM FULL {KEY_TABLE}")
                finally:
                    conn.execute("RESET lock_timeout")
        except PersistenceError as error:
            return (f"the key table could not be rewritten ({type(error).__name__}: it is "
                    "locked or the store's role may not rewrite it)")
        return None

    def rewrap(self, transform: Callable[[str, bytes], bytes],
               add: Mapping[str, bytes], since: str) -> int:
        self._ensure_pending_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SET LOCAL lock_timeout = '{SCRUB_WAIT_MS}ms'")
            c.execute(f"LOCK TABLE {KEY_TABLE} IN EXCLUSIVE MODE")
            c.execute(f"SELECT key_id, wrapped FROM {KEY_TABLE}")
            rows = [(str(r["key_id"]), bytes(r["wrapped"])) for r in c.fetchall()]
            for key_id, wrapped in rows:
                c.execute(f"UPDATE {KEY_TABLE} SET wrapped=%s WHERE key_id=%s",
                          (transform(key_id, wrapped), key_id))
            for key_id, wrapped in add.items():
                c.execute(f"INSERT INTO {KEY_TABLE} (key_id, wrapped) VALUES (%s, %s)",
                          (key_id, wrapped))
            c.execute(f"INSERT INTO {PENDING_TABLE} VALUES (%s, NULL, %s, %s, "
                      "txid_current()) ON CONFLICT (key_id) DO NOTHING",
                      (f"rotation:{since}", since, STILL_SCRUBBING))
        return len(rows) + len(add)

    def count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) AS n FROM {KEY_TABLE} WHERE key_id NOT IN (%s, %s)",
                      (_CHECK_ID, _ROOT_ID))
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
        root = table.get(_ROOT_ID)
        if root is not None:  # the master key was rotated: tags stay under the first one
            try:
                self.master = self.master.rooted(self._open(_ROOT_ID, root))
            except InvalidTag:
                raise StoreUnavailable("the store's integrity root does not open with the "
                                       "master key (the key table was changed)") from None

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

    def make_keys(self, patient_refs: Iterable[str]) -> None:
        """The data keys `encrypt` makes for these patients when they have none, made
        for all of them in one transaction (a batch of imported lines: one commit, not
        one per new patient); the keys they already have are kept."""
        missing = {key_id: self._wrap_key(key_id, AESGCM.generate_key(256))
                   for key_id in {self.key_id(ref) for ref in patient_refs}
                   if self._cache.get(key_id) is None}
        if not missing:
            return
        for key_id, wrapped in self._table.put_all_if_absent(missing).items():
            try:
                self._cache[key_id] = AESGCM(self._open(key_id, wrapped))
            except InvalidTag:
                raise StoreUnavailable("a patient's data key does not open with the "
                                       "master key (the key table was changed)") from None

    def shred(self, patient_ref: str, since: str = "",
              wait_ms: int = SCRUB_WAIT_MS) -> Pending | None:
        """Destroys the patient's data key for good: deletes it (recording the erasure
        as pending in the same transaction, with `since`: when), then scrubs the store's
        files of its old copies. None when done; else the pending erasure, completed later by
        `complete_erasures`."""
        key_id = self.key_id(patient_ref)
        self._cache.pop(key_id, None)
        self._table.destroy(key_id, patient_ref, since)
        remaining = self._table.complete(wait_ms)
        return next((p for p in remaining if p["patient_ref"] == patient_ref), None)

    def pending_erasures(self) -> list[Pending]:
        """Erasures (and rotations) whose old key copies may still be in the store's
        files: `[{"kind", "patient_ref", "since", "reason"}]`."""
        return self._table.pending()

    def complete_erasures(self, wait_ms: int = SCRUB_WAIT_MS) -> list[Pending]:
        """Tries to finish the pending erasures; returns those still pending."""
        return self._table.complete(wait_ms)

    def try_complete_erasures(self) -> bool:
        """At an opportunity (opening the store, after a write): tries without waiting;
        never fails the caller. True while some erasure is still pending."""
        import sqlite3

        from eventsourcing.persistence import PersistenceError

        try:
            return bool(self._table.complete(0))
        except (PersistenceError, sqlite3.Error):
            return True  # still pending; `keys status --complete` will say why

    def rotate(self, new: MasterKey, since: str) -> dict[str, Any]:
        """Re-wraps every stored key (the patients' data keys and the key check) under
        `new`, in one transaction, and keeps the store's integrity root wrapped under it,
        so that event tags, the seal chain and receipts stay valid. Then scrubs the old
        copies as an erasure does. Returns `{"keys": the patients' data keys, "pending"}`;
        afterwards this keyring uses `new`. Every other process holding the old master
        key must be stopped."""
        new_wrap = AESGCM(new.wrapping)

        def rewrap(key_id: str, wrapped: bytes) -> bytes:
            try:
                plain = self._open(key_id, wrapped)
            except InvalidTag:
                raise StoreUnavailable("a stored key does not open with the current master "
                                       "key (the key table was changed; run: coursebook "
                                       "verify); nothing was rotated") from None
            nonce = secrets.token_bytes(_NONCE)
            return nonce + new_wrap.encrypt(nonce, plain, key_id.encode())

        has_root = self._table.get(_ROOT_ID) is not None
        add = {} if has_root else {_ROOT_ID: rewrap_new(new_wrap, _ROOT_ID, self.master.root)}
        self._table.rewrap(rewrap, add, since)
        self.master = new.rooted(self.master.root)
        self._wrap = new_wrap
        self._cache.clear()
        remaining = self._table.complete(SCRUB_WAIT_MS)
        return {"keys": self._table.count(),
                "pending": [p for p in remaining if p["kind"] == "rotation"]}

    def key_count(self) -> int:
        """How many patients' data keys are stored."""
        return self._table.count()

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


def rewrap_new(wrap: AESGCM, key_id: str, plain: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    return nonce + wrap.encrypt(nonce, plain, key_id.encode())


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
