"""Personal data at rest (CONTRACT section 7): encrypted per patient, shredded on erasure.

Every test reads the raw bytes the store keeps on disk — the SQLite file, its `-wal` and
`-shm` files and the key file — and looks for the patient's values there.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook.adapters.storage.integrity import verify_store
from coursebook.adapters.storage.keys import MASTER_KEY_ENV, key_file_for, new_master_key_text
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.domain.ids import course_uuid
from coursebook.domain.values import ERASED
from coursebook.errors import Code, StoreUnavailable
from coursebook.service.application import Coursebook
from tests import pg
from tests.builders import Clinic, day, rejected

SECRET_PATIENT = {"name": "Philippa Quennell-Vasquez", "birth_date": "1971-08-29"}
SECRETS = ["Philippa", "Quennell-Vasquez", "1971-08-29", "Sulfasalazine 500mg",
           "Propolis resin", "Worried about her divorce hearing", "Itchy wheal behind ear",
           "Called back, anxious about scarring"]
KEEP_PATIENT = {"name": "Bartholomew Keepwell", "birth_date": "1966-01-02"}


def store_files(target: Path) -> list[Path]:
    return [p for p in (target, Path(f"{target}-wal"), Path(f"{target}-shm"),
                        Path(f"{target}.key")) if p.exists()]


def leaks(target: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    found = []
    for path in store_files(target):
        data = path.read_bytes()
        found.extend((path.name, n) for n in needles if n in data)
    return found


def encodings(values: list[str]) -> list[bytes]:
    """Each value as UTF-8 and as the JSON escapes orjson or json might write."""
    out: list[bytes] = []
    for value in values:
        out.append(value.encode())
        out.append(value.encode("ascii", "backslashreplace"))
    return out


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_app(target: Path, clock: FixedClock) -> Iterator[Coursebook]:
    app = open_store(str(target), create=True, clock=clock)
    app.initialise("Europe/Paris")
    yield app
    app.close()


def treat_secret_patient(clinic: Clinic) -> None:
    clinic.open("C1", patient_ref="P-SECRET", patient=SECRET_PATIENT)
    clinic.consult("C1", diabetes=True, medications=["Sulfasalazine 500mg"],
                   allergies=["Propolis resin"], notes="Worried about her divorce hearing")
    clinic.give("C1")
    clinic.react("C1", severity=3, notes="Itchy wheal behind ear")
    clinic.review("C1", notes="Called back, anxious about scarring")
    clinic.open("C2", patient_ref="P-SECRET", patient=SECRET_PATIENT, at=day(4))
    clinic.open("K1", patient_ref="P-KEEP", patient=KEEP_PATIENT)
    clinic.consult("K1")


def test_personal_data_is_never_written_in_clear(sqlite_app: Coursebook, target: Path) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    assert leaks(target, encodings([*SECRETS, "Bartholomew"])) == []
    # ...and yet the engine reads it back, and still applies the screening's rules.
    assert clinic.course("C1")["patient"] == SECRET_PATIENT
    course: Any = sqlite_app.repository.get(course_uuid("C1"))
    assert course.state.allergies == ["Propolis resin"]
    with rejected(Code.ALLERGEN):
        clinic.give("C1", at=day(30), products=[{"name": "Propolis resin gel", "lot": "L",
                                                 "expires_on": "2030-01-01"}])


def test_erasure_shreds_the_key_and_leaves_no_trace_in_any_file(
        sqlite_app: Coursebook, target: Path) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    wrapped = sqlite_app.keyring.wrapped_key("P-SECRET")
    assert wrapped is not None
    assert leaks(target, [wrapped]) != []  # the scan does see the key while it exists
    clinic.run("erase_patient", at=day(6), actor="dpo", patient_ref="P-SECRET",
               reason="GDPR Art. 17 request")

    assert sqlite_app.keyring.wrapped_key("P-SECRET") is None
    assert leaks(target, [wrapped, *encodings(SECRETS)]) == []
    for course_id in ("C1", "C2"):
        document = clinic.course(course_id)
        assert document["patient"] == ERASED
        assert "PATIENT_ERASED" in document["blocked_by"]
    assert clinic.course("C1")["sessions_given"] == 1
    assert clinic.course("C1")["contraindications"]["relative"] == ["DIABETES"]
    course: Any = sqlite_app.repository.get(course_uuid("C1"))
    assert course.state.screening.erased
    # The other patient is untouched, and the history still verifies.
    assert clinic.course("K1")["patient"] == KEEP_PATIENT
    assert verify_store(sqlite_app.seal_chain)["ok"]
    sqlite_app.close()
    assert leaks(target, [wrapped, *encodings(SECRETS)]) == []

    again = open_store(str(target))
    try:
        assert again.get_course("C1")["patient"] == ERASED
        assert verify_store(again.seal_chain)["ok"]
    finally:
        again.close()


def test_an_interrupted_shredding_completes_when_the_erasure_is_sent_again(
        sqlite_app: Coursebook) -> None:
    clinic = Clinic(sqlite_app)
    treat_secret_patient(clinic)
    erase = {"command": "erase_patient", "command_id": "erase-1", "at": day(6),
             "actor": "dpo", "patient_ref": "P-SECRET", "reason": "GDPR Art. 17 request"}
    shred = sqlite_app._shred
    sqlite_app._shred = lambda ref: None  # type: ignore[method-assign]  # a crash, here
    sqlite_app.execute(erase)
    assert sqlite_app.keyring.wrapped_key("P-SECRET") is not None
    sqlite_app._shred = shred  # type: ignore[method-assign]
    assert sqlite_app.execute(erase).status == "duplicate"
    assert sqlite_app.keyring.wrapped_key("P-SECRET") is None


def test_init_makes_an_owner_only_key_file_beside_the_store(
        sqlite_app: Coursebook, target: Path) -> None:
    key_file = Path(f"{target}.key")
    assert key_file == key_file_for(str(target))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_store_without_its_key_cannot_be_opened(sqlite_app: Coursebook, target: Path,
                                                  clock: FixedClock) -> None:
    Clinic(sqlite_app).open()
    sqlite_app.close()
    key_file = Path(f"{target}.key")
    kept = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(StoreUnavailable, match="key"):
        open_store(str(target), clock=clock)
    with pytest.raises(StoreUnavailable, match="key"):  # init never makes a new key for it
        open_store(str(target), create=True, clock=clock)
    assert not key_file.exists()
    key_file.write_text(new_master_key_text())
    key_file.chmod(0o600)
    with pytest.raises(StoreUnavailable, match="does not open this store"):
        open_store(str(target), clock=clock)
    key_file.write_bytes(kept)
    open_store(str(target), clock=clock).close()


def test_the_master_key_may_come_from_the_environment(
        tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key_text())
    target = tmp_path / "env.db"
    app = open_store(str(target), create=True, clock=clock)
    app.initialise()
    Clinic(app).open(patient=SECRET_PATIENT)
    app.close()
    assert not Path(f"{target}.key").exists()
    assert open_store(str(target), clock=clock).get_course("C1")["patient"] == SECRET_PATIENT
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key_text())
    with pytest.raises(StoreUnavailable, match="does not open this store"):
        open_store(str(target), clock=clock)
    monkeypatch.setenv(MASTER_KEY_ENV, "not base64 at all!")
    with pytest.raises(StoreUnavailable, match=MASTER_KEY_ENV):
        open_store(str(target), clock=clock)


def test_postgresql_key_files_live_in_the_user_configuration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = key_file_for("postgresql://cb:secret@db.example:5433/clinic")
    assert path == tmp_path / "coursebook" / "keys" / "db.example-5433-clinic.key"
    assert "secret" not in str(path)


def test_the_key_table_is_not_an_event_table(sqlite_app: Coursebook, target: Path) -> None:
    import sqlite3

    with sqlite3.connect(target) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "coursebook_keys" in names
    assert "seal_chain" in names
    assert [n for n in names if "event" in n.lower()] == ["stored_events"]


def test_the_memory_store_encrypts_too(app: Coursebook, store_kind: str) -> None:
    clinic = Clinic(app)
    treat_secret_patient(clinic)
    states = b"".join(bytes(n.state) for n in clinic.notifications())
    assert [s for s in encodings(SECRETS) if s in states] == []
    assert os.environ.get(MASTER_KEY_ENV) is None or store_kind


def test_command_receipts_keep_a_keyed_digest_only(sqlite_app: Coursebook) -> None:
    """Without the master key, a stolen store cannot confirm a guess of a patient's data
    through the digest that tells duplicates apart."""
    import hashlib

    import orjson

    from coursebook.domain.commands import canonical_body
    from coursebook.domain.ids import command_uuid

    clinic = Clinic(sqlite_app)
    body = {"command": "open_course", "command_id": "open-guess", "at": day(0),
            "actor": "admin", "course_id": "C1", "patient_ref": "P1",
            "indication": "skin_rejuvenation", "patient": SECRET_PATIENT}
    sqlite_app.execute(body)
    receipt: Any = sqlite_app.repository.get(command_uuid("open-guess"))
    guess = hashlib.sha256(orjson.dumps(canonical_body(body),
                                        option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert receipt.digest != guess
    assert sqlite_app.execute(body).status == "duplicate"
    clinic.run("erase_patient", at=day(6), actor="dpo", patient_ref="P1", reason="request")
    assert sqlite_app.execute(body).status == "duplicate"


@pytest.fixture
def pg_target() -> Iterator[str]:
    with pg.fresh_database("privacy") as target:
        yield target


def pg_table_bytes(target: str) -> bytes:
    """Every data file of every table and index of the database, as stored on disk."""
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        paths = [r[0] for r in conn.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
            "AND c.relkind IN ('r', 'i', 't')")]
        return b"".join(bytes(conn.execute("SELECT pg_read_binary_file(%s)", (p,))
                              .fetchone()[0]) for p in paths if p)


@pytest.mark.postgres
def test_erasure_on_postgresql_leaves_no_trace_in_the_table_files(
        pg_target: str, clock: FixedClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = open_store(pg_target, create=True, clock=clock)
    try:
        app.initialise("Europe/Paris")
        clinic = Clinic(app)
        treat_secret_patient(clinic)
        wrapped = app.keyring.wrapped_key("P-SECRET")
        assert wrapped is not None
        before = pg_table_bytes(pg_target)
        assert wrapped in before
        assert [s for s in encodings(SECRETS) if s in before] == []
        clinic.run("erase_patient", at=day(6), actor="dpo", patient_ref="P-SECRET",
                   reason="GDPR Art. 17 request")
        # Another transaction anywhere on the server (another test, autovacuum) may hold
        # the old row visible: the erasure then says it is pending, and the next
        # opportunity completes it, as `keys status --complete` does.
        for _ in range(60):
            if not app.key_status(complete=True)["pending_erasures"]:
                break
            time.sleep(0.5)
        assert app.key_status()["pending_erasures"] == []
        assert wrapped not in pg_table_bytes(pg_target)
        assert clinic.course("C1")["patient"] == ERASED
        assert clinic.course("K1")["patient"] == KEEP_PATIENT
        assert verify_store(app.seal_chain)["ok"]
    finally:
        app.close()


def test_an_application_built_from_its_environment_finds_the_key_file(
        sqlite_app: Coursebook, target: Path, clock: FixedClock) -> None:
    """As the library's runners build it: from the environment, without open_store."""
    from coursebook.adapters.storage.persistence import store_env

    Clinic(sqlite_app).open(patient=SECRET_PATIENT)
    again = Coursebook(store_env(str(target), create=False), clock=clock)
    try:
        assert again.get_course("C1")["patient"] == SECRET_PATIENT
    finally:
        again.close()
    Path(f"{target}.key").unlink()
    with pytest.raises(StoreUnavailable, match="key"):
        Coursebook(store_env(str(target), create=False), clock=clock)
