"""The application service: `Coursebook`, the one object a host holds.

It is an eventsourcing `Application` (`wiring.py`) that decides commands one at a time
(`commanding.py`) or in batches (`batches.py`), offers one method per command
(`command_methods.py`) and answers questions (`queries.py`). Every accepted write is
sealed into the tamper-evident chain and reflected in the calendar and audit views before
the call returns, unless the host runs a worker that follows the log (`views_follow=
"worker"`): then the views are that worker's job, and sealing still happens here.
"""

from __future__ import annotations

from coursebook.domain.course import TreatmentCourse
from coursebook.service.batches import Batching
from coursebook.service.command_methods import CommandMethods
from coursebook.service.commanding import Outcome
from coursebook.service.queries import Queries
from coursebook.service.wiring import project_aggregate

__all__ = ["Coursebook", "Outcome"]


class Coursebook(CommandMethods, Batching, Queries):
    """Treatment courses, their rules, and the questions a clinic and a reviewer ask."""

    name = "coursebook"


Coursebook.snapshotting_projectors = {TreatmentCourse: project_aggregate}
