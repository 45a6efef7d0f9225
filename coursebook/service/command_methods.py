"""One method per command, with the command's own fields as keyword arguments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from coursebook.domain.values import Product
from coursebook.service.commanding import Commanding, Outcome

__all__ = ["CommandMethods"]


class CommandMethods(Commanding):
    """`register_practitioner(...)`, `open_course(...)`, … each calls `execute`."""

    # -- one method per command (same names and fields as the contract) ----------------
    def _call(self, command: str, fields: dict[str, Any]) -> Outcome:
        body: dict[str, Any] = {"command": command}
        for key, value in fields.items():
            if key == "self" or (value is None and key != "anaesthetic"):
                continue
            if key == "products":
                value = [p.as_dict() if isinstance(p, Product) else p for p in value]
            body[key] = value
        return self.execute(body)

    def register_practitioner(self, *, command_id: str, at: dt.datetime | str, actor: str,
                              practitioner_id: str, name: str, role: str, license_number: str,
                              license_expires_on: dt.date | str,
                              expected_version: int | None = None) -> Outcome:
        return self._call("register_practitioner", locals())

    def renew_license(self, *, command_id: str, at: dt.datetime | str, actor: str,
                      practitioner_id: str, license_number: str,
                      license_expires_on: dt.date | str,
                      expected_version: int | None = None) -> Outcome:
        return self._call("renew_license", locals())

    def open_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                    course_id: str, patient_ref: str, indication: str,
                    planned_sessions: int | None = None, patient: dict[str, Any] | None = None,
                    expected_version: int | None = None) -> Outcome:
        return self._call("open_course", locals())

    def record_consultation(self, *, command_id: str, at: dt.datetime | str, actor: str,
                            course_id: str, consent: bool, screening: dict[str, Any],
                            expected_version: int | None = None) -> Outcome:
        return self._call("record_consultation", locals())

    def override_contraindication(self, *, command_id: str, at: dt.datetime | str, actor: str,
                                  course_id: str, code: str, justification: str,
                                  expected_version: int | None = None) -> Outcome:
        return self._call("override_contraindication", locals())

    def schedule_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                         course_id: str, planned_at: dt.datetime | str,
                         session_no: int | None = None, practitioner_id: str | None = None,
                         spacing_override_reason: str | None = None,
                         expected_version: int | None = None) -> Outcome:
        return self._call("schedule_session", locals())

    def reschedule_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                           course_id: str, session_no: int, planned_at: dt.datetime | str,
                           reason: str, spacing_override_reason: str | None = None,
                           expected_version: int | None = None) -> Outcome:
        return self._call("reschedule_session", locals())

    def cancel_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                       course_id: str, session_no: int, reason: str,
                       expected_version: int | None = None) -> Outcome:
        return self._call("cancel_session", locals())

    def give_session(self, *, command_id: str, at: dt.datetime | str, actor: str,
                     course_id: str, products: list[dict[str, Any]] | list[Product],
                     areas: list[str], dose_ml: float, anaesthetic: str | None,
                     session_no: int | None = None, spacing_override_reason: str | None = None,
                     aftercare: str | None = None,
                     expected_version: int | None = None) -> Outcome:
        return self._call("give_session", locals())

    def report_reaction(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, session_no: int, kind: str, severity: int,
                        notes: str | None = None,
                        expected_version: int | None = None) -> Outcome:
        return self._call("report_reaction", locals())

    def review_reaction(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, session_no: int, decision: str,
                        notes: str | None = None,
                        expected_version: int | None = None) -> Outcome:
        return self._call("review_reaction", locals())

    def record_follow_up(self, *, command_id: str, at: dt.datetime | str, actor: str,
                         course_id: str, session_no: int, outcome: str,
                         notes: str | None = None,
                         expected_version: int | None = None) -> Outcome:
        return self._call("record_follow_up", locals())

    def withdraw_consent(self, *, command_id: str, at: dt.datetime | str, actor: str,
                         course_id: str, reason: str | None = None,
                         expected_version: int | None = None) -> Outcome:
        return self._call("withdraw_consent", locals())

    def adjust_interval(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, min_days: int, target_days: int, max_days: int,
                        reason: str, expected_version: int | None = None) -> Outcome:
        return self._call("adjust_interval", locals())

    def extend_plan(self, *, command_id: str, at: dt.datetime | str, actor: str,
                    course_id: str, planned_sessions: int, reason: str,
                    expected_version: int | None = None) -> Outcome:
        return self._call("extend_plan", locals())

    def pause_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                     course_id: str, reason: str,
                     expected_version: int | None = None) -> Outcome:
        return self._call("pause_course", locals())

    def resume_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                      course_id: str, reason: str | None = None,
                      expected_version: int | None = None) -> Outcome:
        return self._call("resume_course", locals())

    def complete_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                        course_id: str, expected_version: int | None = None) -> Outcome:
        return self._call("complete_course", locals())

    def discontinue_course(self, *, command_id: str, at: dt.datetime | str, actor: str,
                           course_id: str, reason: str,
                           expected_version: int | None = None) -> Outcome:
        return self._call("discontinue_course", locals())

    def erase_patient(self, *, command_id: str, at: dt.datetime | str, actor: str,
                      patient_ref: str, reason: str,
                      expected_version: int | None = None) -> Outcome:
        return self._call("erase_patient", locals())
