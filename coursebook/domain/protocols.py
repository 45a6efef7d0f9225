"""The protocol catalogue: versioned data shipped in the package (TOML), not constants."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from coursebook.domain.values import Phase, Protocol, SpacingRule

__all__ = ["INDICATIONS", "Catalogue", "default_catalogue"]

INDICATIONS = ("skin_rejuvenation", "hair_restoration", "fat_reduction", "cellulite",
               "pigmentation")


class Catalogue:
    """Protocols by indication, from one catalogue file of one version."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.name = str(data.get("catalogue", "custom"))
        self.version = int(data["version"])
        defaults = data.get("defaults", {})
        self.protocols: dict[str, Protocol] = {}
        for indication, entry in data["protocols"].items():
            phases = []
            for i, phase in enumerate(entry["phases"], start=1):
                rule = SpacingRule(phase["min_days"], phase["target_days"], phase["max_days"],
                                   source=f"{self.name}/{indication} v{self.version} phase {i}")
                phases.append(Phase(first=phase["first"], last=phase.get("last"), rule=rule))
            maintenance = entry.get("maintenance")
            self.protocols[indication] = Protocol(
                indication=indication,
                catalogue=self.name,
                version=self.version,
                default_sessions=entry["default_sessions"],
                min_planned_sessions=entry.get("min_planned_sessions",
                                               defaults.get("min_planned_sessions", 3)),
                max_planned_sessions=entry.get("max_planned_sessions",
                                               defaults.get("max_planned_sessions", 10)),
                max_extended_sessions=entry.get("max_extended_sessions",
                                                defaults.get("max_extended_sessions", 20)),
                phases=phases,
                maintenance=None if maintenance is None else SpacingRule(
                    maintenance["min_days"], maintenance["target_days"],
                    maintenance["max_days"],
                    source=f"{self.name}/{indication} v{self.version} maintenance"),
            )

    @classmethod
    def from_file(cls, path: Path) -> Catalogue:
        with path.open("rb") as f:
            return cls(tomllib.load(f))

    def get(self, indication: str) -> Protocol | None:
        return self.protocols.get(indication)


def default_catalogue() -> Catalogue:
    text = resources.files("coursebook.domain").joinpath("catalogue/default.toml").read_text(
        encoding="utf-8")
    return Catalogue(tomllib.loads(text))
