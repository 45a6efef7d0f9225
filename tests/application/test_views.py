"""The materialised views: exactly once, rebuildable, and equal to the live course state.

- One contract, run on every view store (SQLite file; PostgreSQL, in a database made for
  the test): catch-up, compare-and-set, rebuild, status.
- Property: for generated histories (valid and refused commands, late facts, erasures),
  the views maintained live by several catching-up applications equal the views rebuilt
  from zero, and every calendar entry equals what `course show` says of that course.
- Two workers racing on the same view never apply an event twice.
- A rebuild of every view (one shared read of each page) equals rebuilding each alone,
  keeps the views' indexes, and survives another worker moving a view meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursebook.adapters.storage import postgres_view_recorders
from coursebook.clock import FixedClock
from coursebook.errors import Rejected
from coursebook.projections.calendar import NOT_FOLDED, _Body, course_topics
from coursebook.service import read_models
from coursebook.service.application import Coursebook
from tests.application.test_replay_property import steps
from tests.builders import Clinic
from tests.pg import postgres_database
from tests.stores import START, make_app, reopen

VIEW_STORES = ["sqlite", "postgres"]


def snapshot(app: Coursebook) -> dict[str, Any]:
    """Every row of every view, and its position."""
    out: dict[str, Any] = {}
    for name, runner in read_models.runners(app).items():
        tables = []
        for table in runner.projection.tables:  # each begins with its key's columns
            rows = runner.view.query(f"SELECT * FROM {table} ORDER BY 1, 2")
            tables.append([tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                           for row in rows])
        out[name] = (tables, runner.view.position())
    return out


def indexes(app: Coursebook) -> dict[str, set[str]]:
    """The names of each view's indexes, as its store lists them."""
    out = {}
    for name, runner in read_models.runners(app).items():
        table = runner.projection.tables[0]
        if type(runner.view).__name__ == "PostgresViewRecorder":
            rows = [row for row in runner.view.query(
                "SELECT indexname FROM pg_indexes WHERE tablename = ?", (table,))
                if not str(row[0]).endswith("_pkey")]
        else:
            rows = runner.view.query("SELECT name FROM sqlite_master WHERE type = 'index' "
                                     "AND tbl_name = ? AND sql IS NOT NULL", (table,))
        out[name] = {str(row[0]) for row in rows}
    return out


def expected_calendar(app: Coursebook, course_ids: list[str]) -> list[dict[str, Any]]:
    """The calendar as `course show` sees it (CONTRACT section 5)."""
    entries = []
    for course_id in course_ids:
        try:
            course = app.get_course(course_id)
        except Rejected:
            continue
        if course["status"] not in ("active", "maintenance") or course["next"] is None \
                or "PATIENT_ERASED" in course["blocked_by"]:
            continue
        scheduled = course["next"]["planned_at"] is not None
        entries.append({**course["next"], "course_id": course_id,
                        "patient_ref": course["patient_ref"],
                        "cautions": course["contraindications"]["relative"],
                        "blocked_by": course["blocked_by"],
                        "follow_up": course["follow_up"],
                        "practitioner_id": entries_practitioner(app, course_id)
                        if scheduled else None})
    return entries


def entries_practitioner(app: Coursebook, course_id: str) -> str | None:
    for event in reversed(app.course_events(course_id)):
        if type(event).__name__ == "SessionScheduled":
            return event.practitioner_id  # type: ignore[no-any-return]
    return None


@pytest.fixture
def view_app(request: pytest.FixtureRequest, tmp_path: Path,
             clock: FixedClock) -> Iterator[tuple[str, Coursebook]]:
    kind: str = request.param
    # The writer leaves the views to workers, so each test drives them itself.
    if kind == "sqlite":
        app = make_app("sqlite", tmp_path, clock, views="worker")
        yield str(tmp_path / "store.db"), app
        app.close()
        return
    with postgres_database() as url:
        from coursebook.bootstrap import open_store

        app = open_store(url, create=True, clock=clock, views="worker")
        app.initialise("Europe/Paris")
        yield url, app
        app.close()


def second_app(target: str, clock: FixedClock) -> Coursebook:
    from coursebook.bootstrap import open_store

    return open_store(target, clock=clock)


def a_small_clinic(app: Coursebook) -> Clinic:
    clinic = Clinic(app)
    clinic.ready("C1")
    clinic.give("C1")
    clinic.schedule("C1", planned_at="2026-09-20T10:00:00+02:00", practitioner_id="nurse-bo")
    clinic.ready("C2", patient_ref="P2", indication="hair_restoration")
    clinic.open("C3", patient_ref="P3")
    return clinic


def view_moved_during_a_rebuild_of_all(
        name: str, view_app: tuple[str, Coursebook], clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuilds every view while another worker catches view `name` up before its first
    page commits: that view meets one conflict and every view ends as kept live."""
    target, app = view_app
    a_small_clinic(app)
    read_models.catch_up(app)
    live = snapshot(app)
    other = second_app(target, clock)
    try:
        runner = read_models.runners(app)[name]
        commit = runner.commit

        def moved_first(start: int, *args: Any) -> int | None:
            read_models.runners(other)[name].catch_up()
            monkeypatch.setattr(runner, "commit", commit)
            return commit(start, *args)

        monkeypatch.setattr(runner, "commit", moved_first)
        read_models.rebuild(app)
        assert runner.conflicts == 1
        assert snapshot(app) == live
    finally:
        other.close()


@pytest.mark.parametrize("view_app", VIEW_STORES, indirect=True)
class TestViewContract:
    def test_calendar_after_catch_up_equals_course_show(
            self, view_app: tuple[str, Coursebook]) -> None:
        _, app = view_app
        a_small_clinic(app)
        calendar = read_models.calendar(app)
        assert calendar == sorted(expected_calendar(app, ["C1", "C2", "C3"]),
                                  key=lambda e: (_day(app, e), e["course_id"]))
        assert [e["course_id"] for e in calendar] == ["C2", "C1"]
        assert calendar[1]["practitioner_id"] == "nurse-bo"

    def test_audit_lists_every_fact_in_recording_order_without_personal_data(
            self, view_app: tuple[str, Coursebook]) -> None:
        _, app = view_app
        clinic = a_small_clinic(app)
        clinic.run("erase_patient", at="2026-10-01T09:00:00+02:00", actor="dpo",
                   patient_ref="P1", reason="GDPR request 17")
        trail = read_models.audit(app)
        positions = [row["position"] for row in trail]
        assert positions == sorted(positions)
        assert [row["event"] for row in read_models.audit(app, "C1")] == [
            "Opened", "ConsultationRecorded", "SessionGiven", "SessionScheduled"]
        erasure = trail[-1]
        assert (erasure["event"], erasure["subject"], erasure["reason"]) == (
            "Erased", "P1", "GDPR request 17")
        assert "Jeanne" not in str(trail)
        assert "C1" not in [e["course_id"] for e in read_models.calendar(app)]

    def test_a_page_commits_only_where_it_began(self,
                                                view_app: tuple[str, Coursebook]) -> None:
        _, app = view_app
        a_small_clinic(app)
        view = read_models.runners(app)["audit"].view
        assert view.commit_page(0, 3, [])
        assert not view.commit_page(0, 5, [])  # a second worker's page from 0: refused
        assert view.position() == 3

    def test_rebuild_equals_live_and_status_reaches_the_head(
            self, view_app: tuple[str, Coursebook], clock: FixedClock) -> None:
        target, app = view_app
        a_small_clinic(app)
        read_models.catch_up(app)
        live = snapshot(app)
        other = second_app(target, clock)
        try:
            events = read_models.rebuild(other)
            assert events > 0
            assert snapshot(other) == live
            assert all(s.pending == 0 for s in read_models.status(other))
        finally:
            other.close()

    def test_a_rebuild_keeps_every_index_and_equals_rebuilding_each_view_alone(
            self, view_app: tuple[str, Coursebook]) -> None:
        _, app = view_app
        a_small_clinic(app)
        read_models.catch_up(app)
        live, built = snapshot(app), indexes(app)
        assert built["audit"] == {"view_audit_course"}
        for name in [*read_models.PROJECTIONS, None]:
            read_models.rebuild(app, name)
            assert snapshot(app) == live
            assert indexes(app) == built

    def test_an_interrupted_rebuild_gets_its_indexes_back_when_reopened(
            self, view_app: tuple[str, Coursebook], clock: FixedClock) -> None:
        target, app = view_app
        a_small_clinic(app)
        read_models.catch_up(app)
        live, built = snapshot(app), indexes(app)
        for runner in read_models.runners(app).values():
            runner.reset()  # a rebuild that stopped right after its reset
        assert indexes(app)["audit"] == set()
        other = second_app(target, clock)
        try:
            assert indexes(other) == built
            read_models.catch_up(other)
            assert snapshot(other) == live
        finally:
            other.close()

    def test_a_view_moved_during_a_rebuild_of_all_finishes_on_its_own(
            self, view_app: tuple[str, Coursebook], clock: FixedClock,
            monkeypatch: pytest.MonkeyPatch) -> None:
        view_moved_during_a_rebuild_of_all("audit", view_app, clock, monkeypatch)

    def test_the_calendar_moved_during_a_rebuild_of_all_leaves_compliance_right(
            self, view_app: tuple[str, Coursebook], clock: FixedClock,
            monkeypatch: pytest.MonkeyPatch) -> None:
        # The compliance view reuses the calendar's fold of each page during a rebuild of
        # all; when the calendar leaves the shared pass, compliance folds on its own.
        monkeypatch.setenv("COURSEBOOK_VIEW_PAGE_SIZE", "1")  # rebuild pages of 10 events
        view_moved_during_a_rebuild_of_all("calendar", view_app, clock, monkeypatch)

    def test_views_rebuilt_together_then_kept_live_equal_a_rebuild(
            self, view_app: tuple[str, Coursebook], clock: FixedClock) -> None:
        target, app = view_app
        clinic = a_small_clinic(app)
        read_models.rebuild(app)
        clinic.give("C2", at="2026-09-02T09:00:00+02:00")
        clinic.run("erase_patient", at="2026-10-01T09:00:00+02:00", actor="dpo",
                   patient_ref="P1", reason="GDPR request 17")
        read_models.catch_up(app)  # each view on its own again, from the shared pass
        other = second_app(target, clock)
        try:
            read_models.rebuild(other)
            assert snapshot(app) == snapshot(other)
        finally:
            other.close()

    def test_a_second_application_catches_up_what_the_first_recorded(
            self, view_app: tuple[str, Coursebook], clock: FixedClock) -> None:
        target, app = view_app
        clinic = a_small_clinic(app)
        read_models.catch_up(app)
        other = second_app(target, clock)
        try:
            clinic.give("C2", at="2026-09-02T09:00:00+02:00")  # recorded by `app`
            # `other` meets C2 mid-history: it folds C2's earlier events from the store.
            assert read_models.calendar(other) == read_models.calendar(app)
        finally:
            other.close()

    def test_two_workers_racing_never_apply_an_event_twice(
            self, view_app: tuple[str, Coursebook], clock: FixedClock) -> None:
        target, app = view_app
        clinic = Clinic(app)
        for n in range(12):
            clinic.ready(f"C{n}", patient_ref=f"P{n}")
            clinic.give(f"C{n}")
        workers = [second_app(target, clock) for _ in range(2)]
        try:
            runners = [read_models.runners(w)["audit"] for w in workers]
            for runner in runners:
                runner.page_size = 3
            barrier = threading.Barrier(2)
            done: list[int] = []

            def work(runner: Any) -> None:
                barrier.wait()
                done.append(runner.catch_up())

            threads = [threading.Thread(target=work, args=(r,)) for r in runners]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            trail = read_models.audit(app)
            assert sum(done) == len(trail) + 12 * 1  # + the patient index (no rows)
            assert len({row["position"] for row in trail}) == len(trail)
        finally:
            for worker in workers:
                worker.close()


@pytest.mark.parametrize("view_app", ["postgres"], indirect=True)
def test_a_rebuild_written_in_bulk_equals_the_views_kept_live(
        view_app: tuple[str, Coursebook], monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a rebuild sends its pages' rows in bulk (COPY, or one upsert over
    arrays; here from a single row on, so that this small clinic takes that path); the
    views kept live by small catch-ups (a statement per row) hold the same rows."""
    _, app = view_app
    clinic = a_small_clinic(app)
    clinic.give("C2", at="2026-09-02T09:00:00+02:00", products=[
        {"name": "NCTF 135 HA", "lot": "LOT-7", "expires_on": "2027-01-31"},
        {"name": "Skinbooster", "lot": "lot-8 ", "expires_on": "2027-03-31"}])
    clinic.run("erase_patient", at="2026-10-01T09:00:00+02:00", actor="dpo",
               patient_ref="P3", reason="patient asked")
    read_models.catch_up(app)
    live = snapshot(app)
    assert all(tables[0] for tables, _ in live.values())
    monkeypatch.setattr(postgres_view_recorders, "BULK_ROWS", 1)
    for name in [None, *read_models.PROJECTIONS]:
        read_models.rebuild(app, name)
        assert snapshot(app) == live


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(history=steps(), erase_at=st.integers(0, 30), every=st.integers(1, 4))
def test_views_maintained_live_equal_views_rebuilt_from_zero(
        tmp_path_factory: pytest.TempPathFactory, history: list[tuple[int, dict[str, Any]]],
        erase_at: int, every: int) -> None:
    tmp_path = tmp_path_factory.mktemp("views")
    clock = FixedClock(START - dt.timedelta(days=3))
    app = make_app("sqlite", tmp_path, clock)
    helper = reopen("sqlite", tmp_path, clock)
    assert helper is not None
    try:
        Clinic(app)
        for i, (advance, body) in enumerate(history):
            clock.set(clock.now() + dt.timedelta(seconds=advance))
            if i == erase_at:
                body = {"command": "erase_patient", "command_id": "erase",
                        "at": clock.now().isoformat(), "actor": "dpo",
                        "patient_ref": "P-C1", "reason": "patient asked"}
            with contextlib.suppress(Rejected):
                app.execute(body)
            # Live: the writer catches up after most commands, a second application
            # (its own caches) now and then; both commit with compare-and-set.
            read_models.catch_up(helper if i % every == 0 else app)
        read_models.catch_up(app)
        assert read_models.calendar(app) == sorted(
            expected_calendar(app, ["C1", "C2"]),
            key=lambda e: (_day(app, e), e["course_id"]))
        live = snapshot(app)
        _Body.shared.clear()  # as in a fresh process: protocols revived again
        read_models.rebuild(helper)
        assert snapshot(helper) == live
        read_models.rebuild(helper, "audit")  # one view alone: its own pages
        assert snapshot(helper) == live
        assert_typed_fields_suffice(helper)
    finally:
        helper.close()
        app.close()


def assert_typed_fields_suffice(app: Coursebook) -> None:
    """The calendar converts only the fields its plan names (`typed_fields`); converting
    every field instead gives the same values for all the fold reads."""
    runner = read_models.runners(app)["calendar"]
    projection: Any = runner.projection
    rows = runner.view.select_page(0, 100_000, course_topics()) or []
    for _, _, _, topic, state in rows:
        planned = projection._convert(topic, projection.decode(topic, state)).__dict__
        every = _Body.convert(projection.decode(topic, state), projection._revive).__dict__
        assert {k: v for k, v in planned.items() if k not in NOT_FOLDED} == \
            {k: v for k, v in every.items() if k not in NOT_FOLDED}


def _day(app: Coursebook, entry: dict[str, Any]) -> str:
    if entry["planned_at"] is None:
        return str(entry["target"])
    planned = dt.datetime.fromisoformat(entry["planned_at"])
    return planned.astimezone(app.zone).date().isoformat()
