"""`coursebook migrate --check | --actor ID [--reason TEXT]` as installed (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coursebook.bootstrap import open_store
from tests.application.test_migration import body_of, first_session, restore
from tests.e2e.test_cli import COURSE, coursebook, jsonl, one_json_document
from tests.stores import PG_TEST_ENV


def made(target: str, tmp_path: Path) -> str:
    assert coursebook("init", "--timezone", "Europe/Paris", db=target, cwd=tmp_path)\
        .returncode == 0
    imported = coursebook("import", "-", db=target, stdin=jsonl(*COURSE), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    return target


def test_check_reports_and_changes_nothing(new_target: str, tmp_path: Path) -> None:
    target = made(new_target, tmp_path)
    before = one_json_document(coursebook("--format", "json", "audit", db=target,
                                          cwd=tmp_path))

    result = coursebook("--format", "json", "migrate", "--check", db=target, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    report = one_json_document(result)
    assert (report["ok"], report["problems"], report["courses"]) == (True, [], 1)
    assert {e["type"] for e in report["events"]} >= {"TreatmentCourse.SessionGiven",
                                                     "ClinicSettings.Configured"}
    assert one_json_document(coursebook("--format", "json", "audit", db=target,
                                        cwd=tmp_path)) == before

    table = coursebook("migrate", "--check", db=target, cwd=tmp_path)
    assert table.returncode == 0
    assert b"ok: every stored record reads and every course folds" in table.stdout


def test_migrate_needs_an_actor_and_records_who_ran_it(new_target: str,
                                                        tmp_path: Path) -> None:
    target = made(new_target, tmp_path)

    missing = coursebook("migrate", db=target, cwd=tmp_path)
    assert missing.returncode == 2
    assert b"--actor" in missing.stderr
    blank = coursebook("migrate", "--actor", " ", db=target, cwd=tmp_path)
    assert (blank.returncode, b"actor" in blank.stderr) == (2, True)

    result = coursebook("--format", "json", "migrate", "--actor", "ops-1", "--reason",
                        "coursebook 0.2", db=target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    done = one_json_document(result)
    assert (done["migrated"], done["check"]["ok"]) == (True, True)
    assert done["recorded"]["event"] == "ClinicSettings.StoreMigrated"

    trail = one_json_document(coursebook("--format", "json", "audit", db=target,
                                         cwd=tmp_path))
    last: dict[str, Any] = trail[-1]
    assert (last["position"], last["subject"], last["event"], last["actor"],
            last["reason"]) == (done["recorded"]["position"], "clinic", "StoreMigrated",
                                "ops-1", "coursebook 0.2")
    assert coursebook("verify", db=target, cwd=tmp_path).returncode == 0

    table = coursebook("migrate", "--actor", "ops-1", db=target, cwd=tmp_path)
    assert table.returncode == 0
    assert b"recorded: ClinicSettings.StoreMigrated at position" in table.stdout


def test_a_store_with_a_newer_record_is_refused_with_exit_1(new_target: str,
                                                            tmp_path: Path) -> None:
    target = made(new_target, tmp_path)
    app = open_store(target, extra_env=PG_TEST_ENV if "postgres" in target else None)
    try:
        n = first_session(app)
        restore(app, n, n.topic, {**body_of(n), "class_version": 99})
    finally:
        app.close()

    check = coursebook("--format", "json", "migrate", "--check", db=target, cwd=tmp_path)
    assert check.returncode == 1
    report = one_json_document(check)
    assert report["ok"] is False
    assert [(p["position"], p["subject"]) for p in report["problems"]] == [
        (n.id, "course C1")]
    assert "newer coursebook" in report["problems"][0]["problem"]

    refused = coursebook("--format", "json", "migrate", "--actor", "ops-1", db=target,
                         cwd=tmp_path)
    assert refused.returncode == 1
    assert one_json_document(refused)["migrated"] is False
    table = coursebook("migrate", "--actor", "ops-1", db=target, cwd=tmp_path)
    assert table.returncode == 1
    assert b"nothing changed" in table.stdout
