"""`execute_batch` (the import path): one transaction for many commands, each still atomic
and decided exactly as `execute` decides it one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coursebook.clock import FixedClock
from coursebook.errors import Code, Rejected
from coursebook.service.application import Coursebook
from tests.builders import Clinic, command, day, product, refusals_added, screening
from tests.stores import make_app, reopen


def course_story() -> list[dict[str, Any]]:
    """Commands that depend on each other, with refusals and retries among them."""
    opened = command("open_course", at=day(0, 8), actor="admin", command_id="open-1",
                     course_id="C1", patient_ref="P1", indication="skin_rejuvenation")
    give_1 = command("give_session", at=day(1), command_id="give-1", course_id="C1",
                     products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)
    return [
        command("give_session", at=day(0), course_id="C1", products=[product()],
                areas=["face"], dose_ml=2, anaesthetic=None),      # NOT_FOUND: not open yet
        opened,
        dict(opened),                                               # duplicate, same batch
        {**opened, "patient_ref": "P2"},                            # same id, other body
        command("record_consultation", at=day(0), course_id="C1", consent=True,
                screening=screening()),
        give_1,
        command("give_session", at=day(3), course_id="C1", products=[product()],
                areas=["face"], dose_ml=2, anaesthetic=None),      # TOO_SOON
        command("report_reaction", at=day(2), course_id="C1", session_no=1,
                kind="swelling", severity=4),
        command("give_session", at=day(40), course_id="C1", products=[product()],
                areas=["face"], dose_ml=2, anaesthetic=None),      # REACTION_UNREVIEWED
        command("review_reaction", at=day(3), course_id="C1", session_no=1,
                decision="continue"),
        command("give_session", at=day(40), course_id="C1", products=[product()],
                areas=["face"], dose_ml=2, anaesthetic=None),
    ]


def summary(results: list[Any]) -> list[str]:
    return [f"rejected {r.code}" if isinstance(r, Rejected) else r.status for r in results]


def one_by_one(app: Coursebook, raws: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for raw in raws:
        try:
            out.append(app.execute(raw))
        except Rejected as rejected:
            out.append(rejected)
    return out


def test_a_batch_decides_every_command_as_one_by_one_would(
        tmp_path: Path, clock: FixedClock) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    batched = Clinic(make_app("sqlite", tmp_path / "a", clock))
    single = Clinic(make_app("sqlite", tmp_path / "b", clock))

    got = batched.app.execute_batch(course_story())
    expected = one_by_one(single.app, course_story())

    assert summary(got) == summary(expected) == [
        "rejected NOT_FOUND", "applied", "duplicate", "rejected CONFLICTING_DUPLICATE",
        "applied", "applied", "rejected TOO_SOON", "applied", "rejected REACTION_UNREVIEWED",
        "applied", "applied"]
    assert batched.course() == single.course()
    assert batched.app.get_history("C1") == single.app.get_history("C1")
    stored = [(n.topic, n.originator_version) for n in batched.notifications()]
    assert stored == [(n.topic, n.originator_version) for n in single.notifications()]


def test_a_batch_stops_at_the_first_refusal_when_asked(clinic: Clinic) -> None:
    before = clinic.notifications()
    results = clinic.app.execute_batch(course_story(), stop_on_error=True)

    assert summary(results) == ["rejected NOT_FOUND"]
    assert len(refusals_added(before, clinic.notifications())) == 1


def test_a_batch_refused_by_the_store_is_applied_again_one_by_one(
        tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    clinic = Clinic(make_app("sqlite", tmp_path, clock))
    clinic.ready()
    other = reopen("sqlite", tmp_path, clock)
    assert other is not None
    real_decide = clinic.app._decide

    def decide_then_race(raw: Any, seen: list[str | None]) -> Any:
        outcome = real_decide(raw, seen)
        if raw["command_id"] == "batch-give":  # another writer gives session 1 meanwhile
            Clinic(other, staff=False).give(at=day(1, 10))
        return outcome

    monkeypatch.setattr(clinic.app, "_decide", decide_then_race)
    give = command("give_session", at=day(1), command_id="batch-give", course_id="C1",
                   products=[product()], areas=["face"], dose_ml=2, anaesthetic=None)
    results = clinic.app.execute_batch([give])

    # The batch was not recorded; applied again on its own, the give is decided against
    # the other writer's session 1 (given later that morning), so it is out of order.
    assert summary(results) == ["rejected OUT_OF_ORDER"]
    assert clinic.course()["sessions_given"] == 1
    with pytest.raises(Rejected) as refused:
        clinic.app.execute(give)
    assert refused.value.code == Code.OUT_OF_ORDER
    other.close()


def test_a_whole_text_imports_as_its_lines_not_its_characters(clinic: Clinic) -> None:
    import orjson

    text = "\n".join(orjson.dumps(command("open_course", at=day(0), course_id=f"T{n}",
                                          patient_ref=f"PT{n}", indication="cellulite"))
                     .decode() for n in range(3))
    report = clinic.app.import_lines(text)
    assert (report.applied, report.rejected) == (3, [])
