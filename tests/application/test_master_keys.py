"""The master key: rotation (every stored key re-wrapped atomically, no event touched),
a key per PostgreSQL schema, and key files refused when others may read them (as ssh
refuses a private key)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook.adapters.storage.keys import (
    MasterKey,
    key_file_for,
    new_master_key_text,
)
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.domain.values import ERASED
from coursebook.errors import StoreUnavailable
from coursebook.service.application import Coursebook
from tests import pg
from tests.application.test_erasure_completion import eventually_complete
from tests.application.test_privacy import (
    KEEP_PATIENT,
    SECRET_PATIENT,
    leaks,
    pg_table_bytes,
    treat_secret_patient,
)
from tests.builders import Clinic, day
from tests.stores import PG_TEST_ENV


def stored_events(app: Coursebook) -> list[tuple[Any, ...]]:
    """Every stored event as its raw row: what rotation must leave untouched."""
    return [(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
            for n in app.recorder.select_notifications(start=1, limit=10**6)]


def new_key() -> tuple[str, MasterKey]:
    text = new_master_key_text()
    return text, MasterKey.from_text(text, "test")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_app(target: Path, clock: FixedClock) -> Iterator[Coursebook]:
    app = open_store(str(target), create=True, clock=clock)
    app.initialise("Europe/Paris")
    yield app
    app.close()


def check_rotation(app: Coursebook, reopen: Any, old: MasterKey) -> None:
    """Rotates `app`'s store to a new key and checks everything still holds."""
    clinic = Clinic(app)
    treat_secret_patient(clinic)
    before = stored_events(app)
    old_wrapped = app.keyring.wrapped_key("P-KEEP")
    assert old_wrapped is not None
    _, new = new_key()
    result = app.rotate_master_key(new)
    assert result["keys"] == 2  # two patients' data keys
    eventually_complete(app)
    assert stored_events(app) == before  # no event touched
    assert app.keyring.wrapped_key("P-KEEP") not in (None, old_wrapped)
    assert app.verify()["ok"]
    assert clinic.course("C1")["patient"] == SECRET_PATIENT
    # Receipts keep their digests: a re-sent command is still a duplicate.
    assert app.execute({"command": "open_course", "command_id": "dup-after-rotation",
                        "at": day(5), "actor": "admin", "course_id": "K9",
                        "patient_ref": "P-KEEP", "indication": "skin_rejuvenation",
                        "patient": KEEP_PATIENT}).status == "applied"
    assert app.execute({"command": "open_course", "command_id": "dup-after-rotation",
                        "at": day(5), "actor": "admin", "course_id": "K9",
                        "patient_ref": "P-KEEP", "indication": "skin_rejuvenation",
                        "patient": KEEP_PATIENT}).status == "duplicate"
    app.close()

    with pytest.raises(StoreUnavailable, match="does not open this store"):
        reopen(old)
    again = reopen(new)
    try:
        assert again.get_course("C1")["patient"] == SECRET_PATIENT
        assert again.get_course("K1")["patient"] == KEEP_PATIENT
        assert again.verify()["ok"]
        again.execute({"command": "erase_patient", "command_id": "erase-after-rotation",
                       "at": day(6), "actor": "dpo", "patient_ref": "P-SECRET",
                       "reason": "request"})
        assert again.get_course("C1")["patient"] == ERASED
        eventually_complete(again)
        # A second rotation keeps the same integrity root.
        _, newer = new_key()
        assert again.rotate_master_key(newer)["keys"] == 1  # P-SECRET was erased
        assert again.verify()["ok"]
    finally:
        again.close()
    final = reopen(newer)
    try:
        assert final.get_course("K1")["patient"] == KEEP_PATIENT
        assert final.verify()["ok"]
    finally:
        final.close()


def test_sqlite_rotation_leaves_no_old_wrapped_key_in_the_files(
        target: Path, clock: FixedClock) -> None:
    _, old = new_key()
    app = open_store(str(target), create=True, clock=clock, master_key=old)
    try:
        app.initialise("Europe/Paris")
        treat_secret_patient(Clinic(app))
        old_wrapped = app.keyring.wrapped_key("P-SECRET")
        assert old_wrapped is not None
        assert leaks(target, [old_wrapped]) != []
        assert app.rotate_master_key(new_key()[1])["pending"] == []
        assert leaks(target, [old_wrapped]) == []
    finally:
        app.close()


def test_sqlite_rotation_end_to_end(tmp_path: Path, clock: FixedClock) -> None:
    target = str(tmp_path / "rotate.db")
    _, old = new_key()
    app = open_store(target, create=True, clock=clock, master_key=old)
    app.initialise("Europe/Paris")
    check_rotation(app, lambda key: open_store(target, clock=clock, master_key=key), old)


@pytest.mark.postgres
def test_postgresql_rotation_end_to_end(clock: FixedClock) -> None:
    with pg.postgres_database() as target:
        _, old = new_key()
        app = open_store(target, create=True, clock=clock, master_key=old,
                         extra_env=PG_TEST_ENV)
        app.initialise("Europe/Paris")
        check_rotation(app, lambda key: open_store(target, clock=clock, master_key=key,
                                                   extra_env=PG_TEST_ENV), old)


@pytest.mark.postgres
def test_postgresql_rotation_leaves_no_old_wrapped_key_in_the_table_files(
        clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pg.fresh_database("rotation") as target:
        app = open_store(target, create=True, clock=clock)
        try:
            app.initialise("Europe/Paris")
            treat_secret_patient(Clinic(app))
            old_wrapped = app.keyring.wrapped_key("P-SECRET")
            assert old_wrapped is not None
            assert old_wrapped in pg_table_bytes(target)
            done = app.rotate_master_key(new_key()[1])["pending"] == []
            if done:  # reported done: then truly done
                assert old_wrapped not in pg_table_bytes(target)
            eventually_complete(app)
            assert old_wrapped not in pg_table_bytes(target)
        finally:
            app.close()


def test_a_rotation_is_all_or_nothing(sqlite_app: Coursebook, target: Path,
                                      clock: FixedClock) -> None:
    """A key that does not open (a changed key table) stops the rotation before any row
    is re-wrapped: the store still opens with the old key."""
    import sqlite3

    treat_secret_patient(Clinic(sqlite_app))
    with sqlite3.connect(target) as conn:
        key_id = sqlite_app.keyring.key_id("P-KEEP")
        conn.execute("UPDATE coursebook_keys SET wrapped = zeroblob(60) WHERE key_id=?",
                     (key_id,))
    before = [sqlite_app.keyring.wrapped_key(ref) for ref in ("P-SECRET", "P-KEEP")]
    with pytest.raises(StoreUnavailable, match="nothing was rotated"):
        sqlite_app.rotate_master_key(new_key()[1])
    assert [sqlite_app.keyring.wrapped_key(ref) for ref in ("P-SECRET", "P-KEEP")] == before
    sqlite_app.close()
    open_store(str(target), clock=clock).close()  # the old key still opens the store


# -- key files -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_a_key_file_others_may_read_is_refused(sqlite_app: Coursebook, target: Path,
                                               clock: FixedClock, mode: int) -> None:
    sqlite_app.close()
    key_file = Path(f"{target}.key")
    key_file.chmod(mode)
    with pytest.raises(StoreUnavailable, match=f"permissions {mode:04o} .* too open"):
        open_store(str(target), clock=clock)
    key_file.chmod(0o600)
    open_store(str(target), clock=clock).close()
    key_file.chmod(0o400)
    open_store(str(target), clock=clock).close()


@pytest.mark.postgres
def test_each_postgresql_schema_has_a_key_of_its_own(
        clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("COURSEBOOK_MASTER_KEY", raising=False)
    with pg.postgres_database() as first, pg.postgres_database() as second:
        assert key_file_for(first) != key_file_for(second)
        for target in (first, second):
            app = open_store(target, create=True, clock=clock, extra_env=PG_TEST_ENV)
            app.initialise("Europe/Paris")
            Clinic(app).open(patient=SECRET_PATIENT)
            app.close()
        assert key_file_for(first).read_bytes() != key_file_for(second).read_bytes()
        assert all(os.stat(key_file_for(t)).st_mode & 0o077 == 0 for t in (first, second))
        # One schema's key does not open the other.
        with pytest.raises(StoreUnavailable, match="does not open this store"):
            open_store(second, clock=clock, extra_env=PG_TEST_ENV,
                       master_key=MasterKey.from_text(
                           key_file_for(first).read_text(), "first"))
        key_file_for(second).unlink()
        with pytest.raises(StoreUnavailable, match=str(key_file_for(second))):
            open_store(second, clock=clock, extra_env=PG_TEST_ENV)


@pytest.mark.postgres
def test_a_schema_made_when_schemas_shared_a_key_file_still_opens(
        clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pg.postgres_database() as target:
        app = open_store(target, create=True, clock=clock, extra_env=PG_TEST_ENV)
        app.initialise("Europe/Paris")
        Clinic(app).open(patient=SECRET_PATIENT)
        app.close()
        shared = key_file_for(target, shared=True)
        assert shared != key_file_for(target)
        shared.parent.mkdir(parents=True, exist_ok=True)
        key_file_for(target).rename(shared)  # where that older version kept it
        again = open_store(target, clock=clock, extra_env=PG_TEST_ENV)
        try:
            assert again.get_course("C1")["patient"] == SECRET_PATIENT
        finally:
            again.close()
        shared.unlink()


def test_postgresql_schema_key_file_names() -> None:
    base = "postgresql://cb:secret@db.example:5433/clinic"
    assert key_file_for(base).name == "db.example-5433-clinic.key"
    assert key_file_for(base + "?schema=public").name == "db.example-5433-clinic.key"
    assert key_file_for(base + "?schema=north").name == "db.example-5433-clinic-north.key"
    assert key_file_for(base + "?schema=north", shared=True).name == \
        "db.example-5433-clinic.key"
