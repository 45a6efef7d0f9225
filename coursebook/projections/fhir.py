"""Every course as HL7 FHIR R4 resources: one `Bundle` of type `collection`.

Pure, as the compliance report is: `build_bundle(events, ...)` takes domain events in
recording order (course, practitioner and patient-erasure events; others are ignored),
selects what a time-travel question sees (`domain.selection.select_events`: valid time
`at <= as_of`, record time `timestamp <= known_at`), walks each course's events once and
builds the resources with the R4B models of `fhir.resources` (R4B's models of these
resources are R4's). The mapping, element by element, is docs/fhir.md.

Personal data (the patient's name and birth date, screening answers, reaction notes,
practitioners' names) goes into the bundle only with `include_personal`, and never for a
patient whose key was destroyed (the data then reads as None). Without it the `Patient`
carries only the pseudonymous reference the clinic chose.

Resource ids are UUIDs derived from the natural keys (uuid5), and every reference is the
`urn:uuid:` `fullUrl` of an entry in the same bundle, so two exports of the same events
are identical and a reader resolves every reference without a server.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import attrs
import orjson
from fhir.resources.R4B.adverseevent import AdverseEvent, AdverseEventSuspectEntity
from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.appointment import Appointment, AppointmentParticipant
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity, CarePlanActivityDetail
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.consent import Consent, ConsentProvision
from fhir.resources.R4B.detectedissue import DetectedIssue, DetectedIssueMitigation
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.medication import Medication, MedicationBatch
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.practitioner import Practitioner, PractitionerQualification
from fhir.resources.R4B.procedure import Procedure, ProcedurePerformer
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
    QuestionnaireResponseItemAnswer,
)
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.timing import Timing, TimingRepeat

from coursebook.domain import rules
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.course_state import CourseState
from coursebook.domain.ids import patient_uuid
from coursebook.domain.patient import PatientRecord
from coursebook.domain.practitioner import PractitionerRecord
from coursebook.domain.selection import select_events
from coursebook.domain.values import Product, Protocol, SpacingRule

__all__ = ["EXTENSIONS", "FHIR_VERSION", "SYSTEMS", "build_bundle", "bundle_course_ids",
           "bundle_document"]

FHIR_VERSION = "4.0.1"
"""The FHIR release the bundle conforms to (R4; the R4B models of these resources are
R4's)."""

BASE = "urn:coursebook"
SYSTEMS = {
    "course": f"{BASE}:course",
    "patient": f"{BASE}:patient-ref",
    "practitioner": f"{BASE}:practitioner",
    "actor": f"{BASE}:actor",
    "license": f"{BASE}:license",
    "event": f"{BASE}:event",
    "command": f"{BASE}:command-id",
    "contraindication": f"{BASE}:contraindication",
    "reaction": f"{BASE}:reaction-kind",
    "area": f"{BASE}:area",
    "role": f"{BASE}:role",
    "protocol": f"{BASE}:protocol",
    "observation": f"{BASE}:observation",
    "follow-up-outcome": f"{BASE}:follow-up-outcome",
}
"""The identifier and code systems this export defines (docs/fhir.md)."""

_EXT = f"{BASE}:fhir:StructureDefinition:"
EXTENSIONS = {name: _EXT + name for name in (
    "spacing-rule", "dose", "anaesthetic", "maintenance", "rules-version", "cautions",
    "contraindication-override", "severity-grade", "review", "note", "command-id",
    "course-status", "protocol")}
"""Every extension's url, by name (their definitions: docs/fhir.md)."""

_NS = uuid.UUID("0b8e5a3c-6a0e-5c39-9d55-3f0f6a1e7c21")
_UCUM = "http://unitsofmeasure.org"
_SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
_CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
_CONSENT_CATEGORY = "http://loinc.org"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

_CAREPLAN_STATUS = {"open": "draft", "active": "active", "paused": "on-hold",
                    "maintenance": "active", "completed": "completed",
                    "discontinued": "revoked"}
"""CarePlan.status from the course status (the course status itself: an extension)."""


# -- small builders ----------------------------------------------------------------------
def _id(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


def _url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _ref(resource_id: str, display: str | None = None) -> Reference:
    return Reference(reference=_url(resource_id), display=display)


def _text(text: str, system: str | None = None, code: str | None = None) -> CodeableConcept:
    coding = None if system is None else [Coding(system=system, code=code or text)]
    return CodeableConcept(coding=coding, text=text)


def _ident(system: str, value: str) -> Identifier:
    return Identifier(system=SYSTEMS[system], value=value)


def _ext(name: str, **value: Any) -> Extension:
    return Extension(url=EXTENSIONS[name], **value)


def _sub(url: str, **value: Any) -> Extension:
    return Extension(url=url, **value)


def _iso(instant: dt.datetime) -> dt.datetime:
    """FHIR instants and dateTimes: in UTC (written with a `Z`)."""
    return instant.astimezone(dt.UTC)


def _day(day: dt.date) -> Any:
    """A FHIR date (the models' annotations say datetime; they take a date)."""
    return day


def _spacing(rule: SpacingRule, gap_days: int | None = None) -> Extension:
    parts = [_sub("min-days", valueInteger=rule.min_days),
             _sub("target-days", valueInteger=rule.target_days),
             _sub("max-days", valueInteger=rule.max_days)]
    if rule.source:
        parts.append(_sub("source", valueString=rule.source))
    if gap_days is not None:
        parts.append(_sub("gap-days", valueInteger=gap_days))
    return _ext("spacing-rule", extension=parts)


def _timing(rule: SpacingRule) -> Timing:
    """The protocol's spacing as a Timing: once every `min_days`..`max_days` days."""
    return Timing(repeat=TimingRepeat(frequency=1, period=Decimal(rule.min_days),
                                      periodMax=Decimal(rule.max_days), periodUnit="d"),
                  extension=[_spacing(rule)])


def protocol_canonical(protocol: Protocol) -> str:
    """The catalogue entry a course follows, as a canonical with its version."""
    return (f"{SYSTEMS['protocol']}:{quote(protocol.catalogue, safe='')}/"
            f"{quote(protocol.indication, safe='')}|{protocol.version}")


def bundle_document(bundle: Bundle) -> dict[str, Any]:
    """The bundle's FHIR JSON document (elements without a value left out)."""
    document: dict[str, Any] = orjson.loads(bundle.model_dump_json())
    return document


def bundle_course_ids(document: dict[str, Any]) -> set[str]:
    """The course ids of the CarePlans in a bundle document."""
    return {identifier["value"] for entry in document.get("entry", [])
            if entry["resource"]["resourceType"] == "CarePlan"
            for identifier in entry["resource"].get("identifier", [])
            if identifier.get("system") == SYSTEMS["course"]}


# -- the bundle --------------------------------------------------------------------------
@attrs.define
class _Actors:
    """Practitioners known to the export, and who every event names."""

    include_personal: bool
    practitioners: dict[str, list[Any]] = attrs.field(factory=dict)
    named: set[str] = attrs.field(factory=set)

    def who(self, actor: str) -> Reference:
        """A reference to the practitioner `actor`, when registered; otherwise a logical
        reference by identifier (an administrator, a system account)."""
        if actor in self.practitioners:
            self.named.add(actor)
            return _ref(_id("practitioner", actor))
        return Reference(identifier=_ident("actor", actor), display=actor)

    def resources(self) -> Iterator[Practitioner]:
        for practitioner_id in sorted(self.named):
            yield self._practitioner(practitioner_id, self.practitioners[practitioner_id])

    def _practitioner(self, practitioner_id: str, events: list[Any]) -> Practitioner:
        first = events[0]
        qualifications = [
            PractitionerQualification(
                identifier=[_ident("license", e.license_number)],
                code=_text(first.role, SYSTEMS["role"]),
                period=Period(start=_iso(e.at), end=_day(e.license_expires_on)))
            for e in events]
        return Practitioner(
            id=_id("practitioner", practitioner_id),
            identifier=[_ident("practitioner", practitioner_id)], active=True,
            name=[HumanName(text=first.name)] if self.include_personal else None,
            qualification=qualifications)


@attrs.define
class _Entries:
    """The bundle's entries in order, each resource once (the first one kept)."""

    resources: dict[str, DomainResource] = attrs.field(factory=dict)

    def add(self, resource: DomainResource) -> str:
        resource_id = str(resource.id)
        self.resources.setdefault(resource_id, resource)
        return resource_id

    def __contains__(self, resource_id: str) -> bool:
        return resource_id in self.resources


def build_bundle(events: Iterable[Any], *, as_of: dt.datetime | None,
                 known_at: dt.datetime | None, timestamp: dt.datetime,
                 course_ids: Iterable[str] | None = None,
                 include_personal: bool = False) -> Bundle:
    """The bundle of the courses (all, or `course_ids`) from `events` in recording order,
    as they stood at `as_of` (valid time) as known at `known_at` (record time)."""
    wanted = None if course_ids is None else set(course_ids)
    courses: dict[Any, list[Any]] = {}
    practitioners: dict[Any, list[Any]] = {}
    erasures: list[Any] = []
    for event in events:
        if isinstance(event, TreatmentCourse.Opened | TreatmentCourse.Event):
            courses.setdefault(event.originator_id, []).append(event)
        elif isinstance(event, PractitionerRecord.Registered | PractitionerRecord.LicenseRenewed):
            practitioners.setdefault(event.originator_id, []).append(event)
        elif isinstance(event, PatientRecord.Erased):
            erasures.append(event)

    actors = _Actors(include_personal)
    for stream in practitioners.values():
        selected = select_events(stream, as_of=as_of, known_at=known_at)
        if selected and isinstance(selected[0], PractitionerRecord.Registered):
            actors.practitioners[selected[0].practitioner_id] = selected
    erased = {e.originator_id: e for e in select_events(erasures, as_of=as_of,
                                                        known_at=known_at)}
    selected_courses = []
    for stream in courses.values():
        selected = select_events(stream, as_of=as_of, known_at=known_at)
        if not selected or not isinstance(selected[0], TreatmentCourse.Opened):
            continue
        if wanted is not None and selected[0].course_id not in wanted:
            continue
        selected_courses.append(selected)
    selected_courses.sort(key=lambda stream: str(stream[0].course_id))

    entries = _Entries()
    history: list[tuple[Any, list[str], str]] = []  # (event, targets, fallback target)
    erasures_seen: set[Any] = set()
    for stream in selected_courses:
        course = _Course(stream[0], actors, entries, include_personal=include_personal)
        history.append((stream[0], course.opened_targets(), course.careplan_id))
        for event in stream[1:]:
            history.append((event, course.apply(event), course.careplan_id))
        course.finish()
        erasure = erased.get(patient_uuid(course.patient_ref))
        if erasure is not None and erasure.originator_id not in erasures_seen:
            erasures_seen.add(erasure.originator_id)
            history.append((erasure, [course.patient_id], course.patient_id))

    every = wanted is None
    if every:
        actors.named.update(actors.practitioners)
    provenances = [_provenance(event, targets, fallback, actors, entries)
                   for event, targets, fallback in history]
    for practitioner_id in sorted(actors.named):  # named by now: courses and provenance
        events_of = actors.practitioners[practitioner_id]
        target = _id("practitioner", practitioner_id)
        provenances.extend(_provenance(event, [target], target, actors, entries)
                           for event in events_of)
    for practitioner in actors.resources():
        entries.add(practitioner)
    for provenance in provenances:
        entries.add(provenance)
    return Bundle(
        id=_id("bundle", f"{timestamp.isoformat()}|{as_of}|{known_at}|{sorted(wanted or [])}|"
                         f"{include_personal}"),
        type="collection", timestamp=_iso(timestamp),
        entry=[BundleEntry(fullUrl=_url(rid), resource=resource)
               for rid, resource in entries.resources.items()])


def _provenance(event: Any, targets: list[str], fallback: str, actors: _Actors,
                entries: _Entries) -> Provenance:
    """The who and when of one recorded event: `recorded` is the record time,
    `occurredDateTime` the valid time. Targets not in the bundle (a contraindication a
    later consultation replaced) give way to `fallback` (the course's plan)."""
    name = type(event).__name__
    if isinstance(event, PatientRecord.Erased):
        name = "PatientErased"
    elif isinstance(event, PractitionerRecord.Registered):
        name = "PractitionerRegistered"
    present = list(dict.fromkeys(t for t in targets if t in entries)) or [fallback]
    return Provenance(
        id=_id("provenance", f"{event.originator_id}/{event.originator_version}"),
        target=[_ref(t) for t in present],
        occurredDateTime=_iso(event.at), recorded=_iso(event.timestamp),
        activity=_text(name, SYSTEMS["event"]),
        agent=[ProvenanceAgent(who=actors.who(event.actor))],
        extension=[_ext("command-id", valueString=event.command_id)])


class _Course:
    """One course's resources, built by walking its events in recording order."""

    def __init__(self, opened: Any, actors: _Actors, entries: _Entries, *,
                 include_personal: bool) -> None:
        self.opened = opened
        self.actors = actors
        self.entries = entries
        self.personal = include_personal
        self.course_id: str = opened.course_id
        self.patient_ref: str = opened.patient_ref
        self.patient_id = _id("patient", self.patient_ref)
        self.careplan_id = _id("careplan", self.course_id)
        self.protocol: Protocol = opened.protocol
        self.state = CourseState.start(opened)
        """The course's state, folded by the domain alongside: status, plan, spacing
        rules and which reactions a review closes are the domain's, never re-decided."""
        self.ended_at: dt.datetime | None = None
        self.notes: list[Annotation] = []
        self.consultations = 0
        self.consents: list[Consent] = []
        self.issues: dict[str, DetectedIssue] = {}
        self.consult_targets: list[str] = []
        self.appointments: list[dict[str, Any]] = []
        self.booked: dict[str, Any] | None = None
        self.given: list[tuple[int, str]] = []
        self.given_at: dict[int, dt.datetime] = {}
        self.procedures: dict[int, Procedure] = {}
        self.reactions: list[dict[str, Any]] = []
        self.medications: list[Medication] = []
        self.questionnaires: list[QuestionnaireResponse] = []
        self.follow_ups: list[Observation] = []

    # -- targets of the opening ------------------------------------------------------------
    def opened_targets(self) -> list[str]:
        return [self.careplan_id, self.patient_id]

    # -- the walk --------------------------------------------------------------------------
    def apply(self, event: Any) -> list[str]:
        """Updates the course's resources with `event`; returns the ids it touched."""
        handler = getattr(self, "_on_" + type(event).__name__, None)
        targets: list[str] = [self.careplan_id] if handler is None else handler(event)
        self.state.apply(event)
        return targets

    def _on_ConsultationRecorded(self, e: Any) -> list[str]:
        self.consultations += 1
        n = self.consultations
        for consent in self.consents:
            consent.status = "inactive"
        self.issues = {}
        consent = Consent(
            id=_id("consent", f"{self.course_id}/{n}"), status="active",
            scope=_text("treatment", _CONSENT_SCOPE),
            category=[_text("Patient Consent", _CONSENT_CATEGORY, "59284-0")],
            patient=_ref(self.patient_id), dateTime=_iso(e.at),
            performer=[_ref(self.patient_id)],
            policyRule=_text("consent to the treatment course", _ACT_CODE, "OPTIN")
            if e.consent else _text("treatment refused", _ACT_CODE, "OPTOUT"),
            provision=ConsentProvision(type="permit" if e.consent else "deny",
                                       data=None),
            extension=[_ext("command-id", valueString=e.command_id)])
        self.consents.append(consent)
        targets = [str(consent.id)]
        for code in e.absolute:
            targets.append(self._issue(e, code, "high", "absolute"))
        for code in e.relative:
            targets.append(self._issue(e, code, "moderate", "relative"))
        if self.personal and e.screening is not None and e.screening.data is not None:
            qr = _screening(f"{self.course_id}/{n}", e, self.patient_id, e.screening.data,
                            self.actors.who(e.actor))
            self.questionnaires.append(qr)
            targets.append(str(qr.id))
        return targets

    def _issue(self, e: Any, code: str, severity: str, kind: str) -> str:
        issue = DetectedIssue(
            id=_id("detectedissue", f"{self.course_id}/{self.consultations}/{code}"),
            status="final", code=_text(code, SYSTEMS["contraindication"]),
            severity=severity, patient=_ref(self.patient_id),
            identifiedDateTime=_iso(e.at), author=self.actors.who(e.actor),
            implicated=[_ref(self.careplan_id)],
            detail=f"{kind} contraindication raised by the consultation's screening")
        self.issues[code] = issue
        return str(issue.id)

    def _on_ContraindicationOverridden(self, e: Any) -> list[str]:
        issue = self.issues.get(e.code)
        if issue is None:  # pragma: no cover - the engine overrides only codes in force
            return [self.careplan_id]
        issue.mitigation = [*(issue.mitigation or []), DetectedIssueMitigation(
            action=_text(f"physician override: {e.justification}"),
            date=_iso(e.at), author=self.actors.who(e.actor))]
        return [str(issue.id)]

    def _rule_for(self, session_no: int) -> SpacingRule:
        return rules.spacing_rule(self.state, session_no)

    def _on_SessionScheduled(self, e: Any) -> list[str]:
        self._close_booking("cancelled", "superseded by a new booking")
        k = len(self.appointments) + 1
        booking = {"id": _id("appointment", f"{self.course_id}/{k}"), "session_no": e.session_no,
                   "planned_at": e.planned_at, "practitioner_id": e.practitioner_id,
                   "status": "booked", "reason": None, "override": e.spacing_override_reason,
                   "rule": e.rule, "gap_days": e.gap_days, "created": e.at}
        self.appointments.append(booking)
        self.booked = booking
        return [booking["id"]]

    def _on_SessionRescheduled(self, e: Any) -> list[str]:
        booking = self.booked
        if booking is None:  # pragma: no cover - the engine reschedules only a booking
            return [self.careplan_id]
        booking.update(planned_at=e.planned_at, override=e.spacing_override_reason,
                       rule=e.rule, gap_days=e.gap_days)
        booking.setdefault("moves", []).append(e.reason)
        return [booking["id"]]

    def _close_booking(self, status: str, reason: str | None) -> str | None:
        booking = self.booked
        if booking is None:
            return None
        booking["status"], booking["reason"] = status, reason
        self.booked = None
        return str(booking["id"])

    def _on_SessionCancelled(self, e: Any) -> list[str]:
        closed = self._close_booking("cancelled", e.reason)
        return [closed or self.careplan_id]

    def _on_SessionGiven(self, e: Any) -> list[str]:
        targets = [self.careplan_id]
        booking = self.booked
        if booking is not None and booking["session_no"] <= e.session_no:
            targets.append(self._close_booking("fulfilled", None) or self.careplan_id)
        procedure_id = _id("procedure", f"{self.course_id}/{e.session_no}")
        medications = [self._medication(product) for product in e.products]
        extensions = [_ext("dose", valueQuantity=Quantity(
                          value=e.dose_ml, unit="mL", system=_UCUM, code="mL")),
                      _ext("maintenance", valueBoolean=e.maintenance),
                      _ext("rules-version", valueString=e.rules_version)]
        if e.anaesthetic is not None:
            extensions.append(_ext("anaesthetic", valueString=e.anaesthetic))
        if e.rule is not None:
            extensions.append(_spacing(e.rule, e.gap_days))
        if e.cautions:
            extensions.append(_ext("cautions", extension=[
                _sub("code", valueCode=code) for code in e.cautions]))
        for override in e.overrides:
            extensions.append(_ext("contraindication-override", extension=[
                _sub("code", valueCode=override["code"]),
                _sub("justification", valueString=override["justification"]),
                _sub("by", valueString=override["by"]),
                _sub("at", valueDateTime=_iso(_as_datetime(override["at"])))]))
        notes = []
        if e.spacing_override_reason is not None:
            notes.append(Annotation(text=f"spacing override: {e.spacing_override_reason}",
                                    time=_iso(e.at)))
        used_code = [_text(product.name) for product in e.products]
        if e.anaesthetic is not None:
            used_code.append(_text(e.anaesthetic))
        procedure = Procedure(
            id=procedure_id, status="completed",
            identifier=[_ident("course", f"{self.course_id}#{e.session_no}")],
            basedOn=[_ref(self.careplan_id)], subject=_ref(self.patient_id),
            code=_text(f"{self.protocol.indication} session {e.session_no}",
                       SYSTEMS["protocol"], self.protocol.indication),
            performedDateTime=_iso(e.at),
            performer=[ProcedurePerformer(actor=self.actors.who(e.actor))],
            bodySite=[_text(area, SYSTEMS["area"]) for area in e.areas],
            usedReference=[_ref(m) for m in medications], usedCode=used_code,
            followUp=None if e.aftercare is None
            else [_text(f"aftercare: {e.aftercare}")],
            note=notes or None, extension=extensions)
        self.procedures[e.session_no] = procedure
        self.given.append((e.session_no, procedure_id))
        self.given_at[e.session_no] = _iso(e.at)
        targets.insert(0, procedure_id)
        return targets

    def _medication(self, product: Product) -> str:
        key = f"{product.name}|{product.lot}|{product.expires_on.isoformat()}"
        medication = Medication(
            id=_id("medication", key), code=_text(product.name),
            batch=MedicationBatch(lotNumber=product.lot,
                                  expirationDate=_day(product.expires_on)))
        self.medications.append(medication)
        return str(medication.id)

    def _on_ReactionReported(self, e: Any) -> list[str]:
        k = len(self.reactions) + 1
        reaction = {"id": _id("adverseevent", f"{self.course_id}/{k}"), "event": e,
                    "review": None}
        self.reactions.append(reaction)
        return [reaction["id"]]

    def _on_ReactionReviewed(self, e: Any) -> list[str]:
        targets = []
        pending = self.state.pending_reviews(e.session_no)
        for reaction, reported in zip(self.reactions, self.state.reactions, strict=True):
            if any(reported is waiting for waiting in pending):
                reaction["review"] = e
                targets.append(reaction["id"])
        if e.decision == "discontinue":
            self.ended_at = e.at
            self._close_booking("cancelled", "course discontinued after a reaction review")
            targets.append(self.careplan_id)
        return targets or [self.careplan_id]

    def _note(self, e: Any, text: str) -> list[str]:
        self.notes.append(Annotation(text=text, time=_iso(e.at)))
        return [self.careplan_id]

    def _on_IntervalAdjusted(self, e: Any) -> list[str]:
        rule = e.rule
        return self._note(e, f"interval adjusted to {rule.min_days}/{rule.target_days}/"
                             f"{rule.max_days} days: {e.reason}")

    def _on_PlanExtended(self, e: Any) -> list[str]:
        return self._note(e, f"plan extended to {e.planned_sessions} sessions: {e.reason}")

    def _on_FollowUpRecorded(self, e: Any) -> list[str]:
        k = len(self.follow_ups) + 1
        procedure = self.procedures.get(e.session_no)
        notes = None
        if self.personal and e.notes is not None and e.notes.data is not None:
            text = e.notes.data.get("notes")
            notes = [Annotation(text=text, time=_iso(e.at))] if isinstance(text, str) else None
        observation = Observation(
            id=_id("observation", f"{self.course_id}/follow-up/{k}"), status="final",
            code=_text("follow-up", SYSTEMS["observation"]),
            subject=_ref(self.patient_id), effectiveDateTime=_iso(e.at),
            performer=[self.actors.who(e.actor)],
            partOf=None if procedure is None else [_ref(str(procedure.id))],
            valueCodeableConcept=_text(e.outcome, SYSTEMS["follow-up-outcome"]),
            note=notes)
        self.follow_ups.append(observation)
        return [str(observation.id)]

    def _on_ConsentWithdrawn(self, e: Any) -> list[str]:
        k = sum(1 for c in self.consents if c.provision and c.provision.type == "deny") + 1
        for consent in self.consents:
            if consent.status == "active":
                consent.status = "inactive"
                if consent.provision is not None and consent.provision.type == "permit":
                    consent.provision.period = Period(start=consent.dateTime, end=_iso(e.at))
        reason = "consent withdrawn" + ("" if e.reason is None else f": {e.reason}")
        withdrawal = Consent(
            id=_id("consent", f"{self.course_id}/withdrawn/{k}"), status="active",
            scope=_text("treatment", _CONSENT_SCOPE),
            category=[_text("Patient Consent", _CONSENT_CATEGORY, "59284-0")],
            patient=_ref(self.patient_id), dateTime=_iso(e.at),
            performer=[_ref(self.patient_id)],
            policyRule=_text(reason, _ACT_CODE, "OPTOUT"),
            provision=ConsentProvision(type="deny"),
            extension=[_ext("command-id", valueString=e.command_id)])
        self.consents.append(withdrawal)
        return [str(withdrawal.id)]

    def _on_Paused(self, e: Any) -> list[str]:
        return self._note(e, f"paused: {e.reason}")

    def _on_Resumed(self, e: Any) -> list[str]:
        return self._note(e, "resumed" + ("" if e.reason is None else f": {e.reason}"))

    def _on_Completed(self, e: Any) -> list[str]:
        if e.maintenance:
            return self._note(e, "initial series completed; maintenance follows")
        self.ended_at = e.at
        closed = self._close_booking("cancelled", "course completed")
        return self._note(e, "completed") + ([closed] if closed else [])

    def _on_Discontinued(self, e: Any) -> list[str]:
        self.ended_at = e.at
        closed = self._close_booking("cancelled", f"course discontinued: {e.reason}")
        return self._note(e, f"discontinued: {e.reason}") + ([closed] if closed else [])

    # -- the resources ---------------------------------------------------------------------
    def finish(self) -> None:
        add = self.entries.add
        add(self._patient())
        add(self._careplan())
        for consent in self.consents:
            add(consent)
        for questionnaire in self.questionnaires:
            add(questionnaire)
        for issue in self.issues.values():
            add(issue)
        for booking in self.appointments:
            add(self._appointment(booking))
        for medication in self.medications:
            add(medication)
        for _, procedure in sorted(self.procedures.items()):
            add(procedure)
        for observation in self.follow_ups:
            add(observation)
        for reaction in self.reactions:
            add(self._adverse_event(reaction))

    def _patient(self) -> Patient:
        data = self.opened.patient.data if (self.personal and self.opened.patient
                                            is not None) else None
        name = birth = None
        if data is not None:
            if isinstance(data.get("name"), str):
                name = [HumanName(text=data["name"])]
            if isinstance(data.get("birth_date"), str):
                birth = _birth_date(data["birth_date"])
        return Patient(id=self.patient_id, identifier=[_ident("patient", self.patient_ref)],
                       name=name, birthDate=birth)

    def _careplan(self) -> CarePlan:
        activities = []
        given = dict(self.given)
        booked = self.booked
        status = self.state.status
        last = max([self.state.planned_sessions, *given, booked["session_no"] if booked else 0])
        for n in range(1, last + 1):
            if n in given:
                at = self.given_at[n]
                activities.append(CarePlanActivity(
                    outcomeReference=[_ref(given[n])],
                    detail=CarePlanActivityDetail(
                        kind="ServiceRequest", status="completed",
                        description=f"session {n}",
                        scheduledPeriod=Period(start=at, end=at))))
            elif booked is not None and booked["session_no"] == n:
                activities.append(CarePlanActivity(detail=CarePlanActivityDetail(
                    kind="Appointment", status="scheduled", description=f"session {n}",
                    scheduledTiming=_timing(self._rule_for(n)))))
            else:
                to_do = ("not-started" if status in ("open", "active", "maintenance")
                         else "on-hold" if status == "paused" else "cancelled")
                activities.append(CarePlanActivity(detail=CarePlanActivityDetail(
                    kind="ServiceRequest", status=to_do, description=f"session {n}",
                    scheduledTiming=_timing(self._rule_for(n)))))
        return CarePlan(
            id=self.careplan_id, identifier=[_ident("course", self.course_id)],
            instantiatesCanonical=[protocol_canonical(self.protocol)],
            status=_CAREPLAN_STATUS[status], intent="plan",
            category=[_text(self.protocol.indication, SYSTEMS["protocol"])],
            title=f"{self.protocol.indication} course {self.course_id}",
            subject=_ref(self.patient_id), created=_iso(self.opened.at),
            period=Period(start=_iso(self.opened.at),
                          end=None if self.ended_at is None else _iso(self.ended_at)),
            author=self.actors.who(self.opened.actor),
            activity=activities, note=self.notes or None,
            extension=[_ext("course-status", valueCode=status),
                       _ext("protocol", extension=[
                           _sub("catalogue", valueString=self.protocol.catalogue),
                           _sub("indication", valueCode=self.protocol.indication),
                           _sub("version", valueInteger=self.protocol.version),
                           _sub("planned-sessions", valueInteger=self.state.planned_sessions),
                           *_catalogue_digest(self.state)]),
                       _ext("rules-version", valueString=self.opened.rules_version)])

    def _appointment(self, booking: dict[str, Any]) -> Appointment:
        participants = [AppointmentParticipant(actor=_ref(self.patient_id),
                                               status="accepted")]
        if booking["practitioner_id"] is not None:
            participants.append(AppointmentParticipant(
                actor=self.actors.who(booking["practitioner_id"]), status="accepted"))
        start = _iso(booking["planned_at"])
        extensions = []
        if booking["rule"] is not None:
            extensions.append(_spacing(booking["rule"], booking["gap_days"]))
        notes = [f"moved: {reason}" for reason in booking.get("moves", [])]
        if booking["override"] is not None:
            notes.append(f"spacing override: {booking['override']}")
        return Appointment(
            id=booking["id"], status=booking["status"],
            identifier=[_ident("course", f"{self.course_id}#{booking['session_no']}")],
            cancelationReason=None if booking["status"] != "cancelled"
            else _text(booking["reason"] or "cancelled"),
            description=f"session {booking['session_no']} of course {self.course_id}",
            start=start, end=start, created=_iso(booking["created"]),
            comment="; ".join(notes) or None,
            supportingInformation=[_ref(self.careplan_id)],
            participant=participants, extension=extensions or None)

    def _adverse_event(self, reaction: dict[str, Any]) -> AdverseEvent:
        e = reaction["event"]
        review = reaction["review"]
        judged = self.state.reactions[self.reactions.index(reaction)]
        serious = e.severity >= 4 or judged.serious_kind
        extensions = [_ext("severity-grade", valueInteger=e.severity)]
        if review is not None:
            extensions.append(_ext("review", extension=[
                _sub("decision", valueCode=review.decision),
                _sub("at", valueDateTime=_iso(review.at)),
                _sub("by", valueReference=self.actors.who(review.actor))]))
        for personal in (e.notes, review.notes if review is not None else None):
            if self.personal and personal is not None and personal.data is not None:
                note = personal.data.get("notes")
                if isinstance(note, str):
                    extensions.append(_ext("note", valueString=note))
        procedure = self.procedures.get(e.session_no)
        return AdverseEvent(
            id=reaction["id"], actuality="actual",
            event=_text(e.kind, SYSTEMS["reaction"]), subject=_ref(self.patient_id),
            date=_iso(e.at), recordedDate=_iso(e.at),
            seriousness=_text("Serious" if serious else "Non-serious", _SERIOUSNESS,
                              "serious" if serious else "non-serious"),
            severity=_text(_severity(e.severity),
                           "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                           _severity(e.severity)),
            recorder=self.actors.who(e.actor),
            suspectEntity=None if procedure is None else [
                AdverseEventSuspectEntity(instance=_ref(str(procedure.id)))],
            extension=extensions)


def _birth_date(value: str) -> Any:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:  # pragma: no cover - the command schema accepts only dates
        return None


def _catalogue_digest(state: CourseState) -> list[Extension]:
    """The digest of the catalogue the course was opened under, when recorded."""
    digest = state.catalogue.get("digest")
    return [] if not digest else [_sub("catalogue-digest", valueString=str(digest))]


def _severity(grade: int) -> str:
    return "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"


def _screening(key: str, e: Any, patient_id: str, answers: dict[str, Any],
               author: Reference) -> QuestionnaireResponse:
    items = []
    for question, answer in answers.items():
        values: list[QuestionnaireResponseItemAnswer] = []
        if isinstance(answer, bool):
            values = [QuestionnaireResponseItemAnswer(valueBoolean=answer)]
        elif isinstance(answer, list):
            values = [QuestionnaireResponseItemAnswer(valueString=str(v)) for v in answer]
        elif answer is not None:
            values = [QuestionnaireResponseItemAnswer(valueString=str(answer))]
        items.append(QuestionnaireResponseItem(linkId=str(question), text=str(question),
                                               answer=values or None))
    return QuestionnaireResponse(
        id=_id("questionnaireresponse", key), status="completed",
        subject=_ref(patient_id), authored=_iso(e.at), author=author, item=items or None)


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
