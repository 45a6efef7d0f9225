"""The `PractitionerRecord` aggregate: who may perform clinical acts, with which licence."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from coursebook.domain import rules
from coursebook.domain.ids import practitioner_uuid

__all__ = ["PractitionerRecord"]


class PractitionerRecord(Aggregate):
    class Registered(Aggregate.Created):
        at: dt.datetime
        actor: str
        command_id: str
        practitioner_id: str
        name: str
        role: str
        license_number: str
        license_expires_on: dt.date

        def apply(self, aggregate: Any) -> None:
            aggregate.practitioner_id = self.practitioner_id
            aggregate.name = self.name
            aggregate.role = self.role
            aggregate.license_number = self.license_number
            aggregate.license_expires_on = self.license_expires_on

    class LicenseRenewed(Aggregate.Event):
        at: dt.datetime
        actor: str
        command_id: str
        license_number: str
        license_expires_on: dt.date

        def apply(self, aggregate: Any) -> None:
            aggregate.license_number = self.license_number
            aggregate.license_expires_on = self.license_expires_on

    if TYPE_CHECKING:  # set by the events' apply(); not constructor arguments
        practitioner_id: str
        name: str
        role: str
        license_number: str
        license_expires_on: dt.date

    @classmethod
    def register(cls, *, recorded_at: dt.datetime, at: dt.datetime, actor: str,
                 command_id: str, practitioner_id: str, name: str, role: str,
                 license_number: str, license_expires_on: dt.date) -> PractitionerRecord:
        return cls._create(cls.Registered, id=practitioner_uuid(practitioner_id),
                           timestamp=recorded_at, at=at, actor=actor, command_id=command_id,
                           practitioner_id=practitioner_id, name=name, role=role,
                           license_number=license_number,
                           license_expires_on=license_expires_on)

    def renew_license(self, *, recorded_at: dt.datetime, at: dt.datetime, actor: str,
                      command_id: str, license_number: str,
                      license_expires_on: dt.date) -> None:
        self.trigger_event(self.LicenseRenewed, timestamp=recorded_at, at=at, actor=actor,
                           command_id=command_id, license_number=license_number,
                           license_expires_on=license_expires_on)

    def for_rules(self) -> rules.Practitioner:
        return rules.Practitioner(self.practitioner_id, self.role, self.license_expires_on)
