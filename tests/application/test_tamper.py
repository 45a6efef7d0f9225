"""Tamper evidence (CONTRACT section 7): the store is changed underneath the engine, with
SQL, and `verify` must find it and name the first bad place.

`TAMPER_CASES` counts every tampering tried (the figure the project reports).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook.adapters.storage.integrity import TAG_LEN, catch_up, verify_store
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.service.application import Coursebook
from tests import pg
from tests.builders import Clinic, day

TAMPER_CASES = {"tried": 0, "found": 0}


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def app(target: Path, clock: FixedClock) -> Iterator[Coursebook]:
    application = open_store(str(target), create=True, clock=clock)
    application.initialise("Europe/Paris")
    clinic = Clinic(application)
    clinic.ready("C1", patient={"name": "Tamsin Oakhurst", "birth_date": "1990-01-01"})
    clinic.give("C1")
    clinic.react("C1", severity=3, notes="swollen cheek")
    clinic.ready("C2", patient_ref="P2")
    yield application
    application.close()


def sql(target: Path, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with sqlite3.connect(target) as conn:
        rows = conn.execute(statement, params).fetchall()
    conn.close()
    return rows


def flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def detected(app: Coursebook, **kwargs: Any) -> dict[str, Any]:
    """Runs verify on a tampered store: it must not be ok, and names a first problem."""
    TAMPER_CASES["tried"] += 1
    result = verify_store(app.seal_chain, **kwargs)
    assert not result["ok"], "tampering went undetected"
    assert result["problems"]
    TAMPER_CASES["found"] += 1
    return result["problems"][0]


def rowids(target: Path) -> list[int]:
    return [r[0] for r in sql(target, "SELECT rowid FROM stored_events ORDER BY rowid")]


def test_an_untouched_store_verifies(app: Coursebook) -> None:
    result = verify_store(app.seal_chain)
    assert result["ok"]
    assert result["problems"] == []
    assert result["events"] + result["other_records"] == \
        len(Clinic(app, staff=False).notifications())
    assert result["events"] == len(app.audit())  # the facts; receipts etc. apart


@pytest.mark.parametrize("where", ["first", "payload", "last", "tag"])
def test_any_changed_byte_of_any_event_is_found_and_named(app: Coursebook, target: Path,
                                                          where: str) -> None:
    catch_up(app.seal_chain)
    for rowid in rowids(target):
        (state,) = sql(target, "SELECT state FROM stored_events WHERE rowid=?", (rowid,))[0]
        at = {"first": 0, "payload": len(state) // 3, "last": len(state) - TAG_LEN - 1,
              "tag": len(state) - TAG_LEN // 2}[where]
        sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (flip(state, at), rowid))
        first = detected(app)
        assert first["position"] == rowid
        sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (state, rowid))
    assert verify_store(app.seal_chain)["ok"]


def test_a_changed_event_is_found_before_the_chain_reaches_it(app: Coursebook,
                                                              target: Path) -> None:
    catch_up(app.seal_chain)
    Clinic(app, staff=False).give("C2")  # recorded, not sealed yet
    newest, state = next((rowid, state) for rowid, state in reversed(sql(
        target, "SELECT rowid, state FROM stored_events ORDER BY rowid")) if b"dose_ml" in state)
    forged = state.replace(b'"dose_ml":2.0', b'"dose_ml":9.0')
    assert forged != state
    sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (forged, newest))
    assert detected(app)["position"] == newest


def test_every_deleted_event_is_found_and_named(app: Coursebook, target: Path) -> None:
    catch_up(app.seal_chain)
    for rowid in rowids(target):
        row = sql(target, "SELECT originator_id, originator_version, topic, state "
                          "FROM stored_events WHERE rowid=?", (rowid,))[0]
        sql(target, "DELETE FROM stored_events WHERE rowid=?", (rowid,))
        first = detected(app)
        assert first["position"] == rowid
        assert "deleted" in first["problem"]
        sql(target, "INSERT INTO stored_events (rowid, originator_id, originator_version, "
                    "topic, state) VALUES (?, ?, ?, ?, ?)", (rowid, *row))
    assert verify_store(app.seal_chain)["ok"]


def test_removing_the_newest_events_with_their_seals_is_caught_by_a_seal_file(
        app: Coursebook, target: Path) -> None:
    head = verify_store(app.seal_chain)["head"]
    newest = rowids(target)[-2:]
    sql(target, f"DELETE FROM stored_events WHERE rowid IN ({newest[0]}, {newest[1]})")
    sql(target, f"DELETE FROM seal_chain WHERE position IN ({newest[0]}, {newest[1]})")
    sql(target, "UPDATE tracking SET notification_id=? WHERE application_name='seal_chain'",
        (newest[0] - 1,))
    assert verify_store(app.seal_chain)["ok"]  # without a head kept elsewhere, nothing can tell
    first = detected(app, against=head)
    assert first["position"] == newest[1]


def test_swapped_and_reordered_events_are_found(app: Coursebook, target: Path) -> None:
    catch_up(app.seal_chain)
    ids = rowids(target)
    a, b = ids[len(ids) // 2 - 1], ids[len(ids) // 2]
    (sa,), (sb,) = (sql(target, "SELECT state FROM stored_events WHERE rowid=?", (r,))[0]
                    for r in (a, b))
    sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (sb, a))
    sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (sa, b))
    assert detected(app)["position"] == a
    sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (sa, a))
    sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (sb, b))
    # Reorder: the two records exchange their positions in the log.
    last = ids[-1] + 100
    sql(target, "UPDATE stored_events SET rowid=? WHERE rowid=?", (last, a))
    sql(target, "UPDATE stored_events SET rowid=? WHERE rowid=?", (a, b))
    sql(target, "UPDATE stored_events SET rowid=? WHERE rowid=?", (b, last))
    assert detected(app)["position"] == a


def test_a_consistent_rewrite_with_recomputed_plain_hashes_is_found(
        app: Coursebook, target: Path) -> None:
    """The forger knows the format and recomputes every digest, but not the HMAC key."""
    catch_up(app.seal_chain)
    previous = bytes(32)
    courses: dict[str, bytes] = {}
    for rowid, oid, version, topic, state in sql(
            target, "SELECT rowid, originator_id, originator_version, topic, state "
                    "FROM stored_events ORDER BY rowid"):
        payload = state[:-TAG_LEN].replace(b'"severity":3', b'"severity":1')
        tag = hashlib.sha256(f"{oid}\0{version}\0{topic}\0".encode() + payload).digest()
        course = hashlib.sha256(courses.get(oid, bytes(32)) + tag).digest()
        previous = hashlib.sha256(previous + tag).digest()
        courses[oid] = course
        sql(target, "UPDATE stored_events SET state=? WHERE rowid=?", (payload + tag, rowid))
        sql(target, "UPDATE seal_chain SET course_mac=?, log_mac=? WHERE position=?",
            (course, previous, rowid))
    assert detected(app)["position"] == rowids(target)[0]


def test_a_forged_event_or_a_changed_seal_is_found(app: Coursebook, target: Path) -> None:
    catch_up(app.seal_chain)
    oid, version, topic, state = sql(
        target, "SELECT originator_id, originator_version, topic, state FROM stored_events "
                "ORDER BY originator_version DESC LIMIT 1")[0]
    sql(target, "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?)", (oid, version + 1, topic, state))
    assert "changed" in detected(app)["problem"]
    sql(target, "DELETE FROM stored_events WHERE originator_version=?", (version + 1,))
    sql(target, "DELETE FROM seal_chain WHERE position>?", (rowids(target)[-1],))
    sql(target, "UPDATE tracking SET notification_id=? WHERE application_name='seal_chain'",
        (rowids(target)[-1],))
    assert verify_store(app.seal_chain)["ok"]
    middle = rowids(target)[3]
    (mac,) = sql(target, "SELECT log_mac FROM seal_chain WHERE position=?", (middle,))[0]
    sql(target, "UPDATE seal_chain SET log_mac=? WHERE position=?", (flip(mac, 0), middle))
    assert detected(app)["position"] == middle


def test_erasure_never_breaks_verification(app: Coursebook) -> None:
    head = verify_store(app.seal_chain)["head"]
    Clinic(app, staff=False).run("erase_patient", at=day(9), actor="dpo", patient_ref="P1",
                    reason="GDPR Art. 17 request")
    result = verify_store(app.seal_chain, against=head)
    assert result["ok"], result["problems"]


@pytest.fixture
def pg_target() -> Iterator[str]:
    with pg.fresh_database("tamper") as target:
        yield target


@pytest.mark.postgres
def test_tampering_on_postgresql_is_found(pg_target: str, clock: FixedClock,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          ) -> None:
    import psycopg

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = open_store(pg_target, create=True, clock=clock)
    try:
        app.initialise("Europe/Paris")
        clinic = Clinic(app)
        clinic.ready("C1")
        clinic.give("C1")
        clinic.run("erase_patient", at=day(9), actor="dpo", patient_ref="P1",
                   reason="GDPR Art. 17 request")
        assert verify_store(app.seal_chain)["ok"]
        with psycopg.connect(pg_target, autocommit=True) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT notification_id FROM coursebook_events ORDER BY notification_id")]
            middle = ids[len(ids) // 2]
            (state,) = conn.execute("SELECT state FROM coursebook_events "
                                    "WHERE notification_id=%s", (middle,)).fetchone()
            conn.execute("UPDATE coursebook_events SET state=%s WHERE notification_id=%s",
                         (flip(state, len(state) // 2), middle))
            assert detected(app)["position"] == middle
            conn.execute("UPDATE coursebook_events SET state=%s WHERE notification_id=%s",
                         (state, middle))
            assert verify_store(app.seal_chain)["ok"]
            conn.execute("DELETE FROM coursebook_events WHERE notification_id=%s", (middle,))
            assert detected(app)["position"] == middle
            assert conn.execute("SELECT count(*) FROM coursebook_keys "
                                "WHERE key_id<>'master-key-check'").fetchone() == (0,)
    finally:
        app.close()


def test_two_catch_ups_at_once_seal_each_event_once(app: Coursebook, target: Path,
                                                    clock: FixedClock) -> None:
    import threading

    # Writes are sealed as they are recorded: start from a store whose chain is empty,
    # each catch-up sealing as a store's first write does (own_from=1), so that both
    # have the whole log to seal.
    sql(target, "DELETE FROM seal_chain")
    sql(target, "DELETE FROM tracking WHERE application_name = 'seal_chain'")
    other = open_store(str(target), clock=clock)
    try:
        counts: list[int] = []
        threads = [threading.Thread(
            target=lambda a=a: counts.append(catch_up(a.seal_chain, own_from=1)))
                   for a in (app, other, app, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = len(Clinic(app, staff=False).notifications())
        assert sum(counts) == total
        assert sql(target, "SELECT count(*) FROM seal_chain") == [(total,)]
        assert verify_store(other.seal_chain)["ok"]
    finally:
        other.close()


def test_tamper_cases_were_counted() -> None:
    """Every tampering tried so far in this module was detected (run with -s to see how
    many: the figure the project reports)."""
    print(f"\ntamper cases: {TAMPER_CASES}")
    assert TAMPER_CASES["found"] == TAMPER_CASES["tried"]


def test_an_emptied_chain_is_a_finding_and_never_rebuilt(app: Coursebook, target: Path,
                                                         clock: FixedClock) -> None:
    """The chain and its tracking row emptied, and a course's last event deleted mid-log:
    plain `verify` says so (it used to rebuild the chain and say ok), and so do later
    writes and verifications: nothing seals it again."""
    catch_up(app.seal_chain)
    sql(target, "DELETE FROM seal_chain")
    sql(target, "DELETE FROM tracking WHERE application_name = 'seal_chain'")
    last_of_c1 = rowids(target)[len(rowids(target)) // 2]
    sql(target, "DELETE FROM stored_events WHERE rowid=?", (last_of_c1,))
    first = detected(app)
    assert "seal chain is missing" in first["problem"]
    Clinic(app, staff=False).ready("C3", patient_ref="P3")
    assert sql(target, "SELECT count(*) FROM seal_chain") == [(0,)]
    assert "seal chain is missing" in detected(app)["problem"]


def test_a_reset_tracking_row_is_a_finding_and_seal_writes_no_head(
        app: Coursebook, target: Path, tmp_path: Path) -> None:
    """The chain's tracking row set back to 0: sealing stopped for good and `verify` said
    ok; `verify --seal` then wrote position 0, flagged by `--against` on an untouched
    store. Now `verify` reports the reset, so no head is written from it."""
    head = verify_store(app.seal_chain)["head"]
    sql(target, "UPDATE tracking SET notification_id=0 WHERE application_name='seal_chain'")
    Clinic(app, staff=False).ready("C3", patient_ref="P3")
    result = verify_store(app.seal_chain)
    assert not result["ok"]
    assert any("tracked position (0) is behind its last link" in p["problem"]
               for p in result["problems"])
    sql(target, "UPDATE tracking SET notification_id=? WHERE application_name='seal_chain'",
        (head.position,))
    result = verify_store(app.seal_chain)  # repaired: the new events are sealed again
    assert result["ok"]
    assert verify_store(app.seal_chain, against=result["head"])["ok"]
    assert verify_store(app.seal_chain, against=head)["ok"]


def test_a_tracking_row_past_the_head_is_a_finding(app: Coursebook, target: Path) -> None:
    catch_up(app.seal_chain)
    sql(target, "UPDATE tracking SET notification_id=1004521 "
                "WHERE application_name='seal_chain'")
    assert "past the last stored event" in detected(app)["problem"]
