"""docs/cli.md and `--help` agree: every command has a section, and every option its
`--help` lists is named in that section (and every option a heading names exists)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from coursebook.adapters.entrypoints.cli import cli

DOC = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
SECTIONS = [(match.group(1), match.group(0)) for match in
            re.finditer(r"^## `([^\n]+)`\n(?:(?!^## ).*\n?)*", DOC, re.MULTILINE)]


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...],
                                                                          click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out.extend(leaves(command, (*path, name)))
        else:
            out.append(((*path, name), command))
    return out


COMMANDS = leaves(cli)


def long_options(command: click.Command) -> set[str]:
    return {opt for param in command.params if isinstance(param, click.Option)
            for opt in param.opts if opt.startswith("--") and opt != "--help"}


def sections_of(path: tuple[str, ...]) -> list[str]:
    """The sections whose heading starts with the command's first word and names the
    rest (`projections status | rebuild [NAME] | run`)."""
    found = []
    for heading, body in SECTIONS:
        words = re.findall(r"[a-z][a-z-]*", heading)
        if words and words[0] == path[0] and all(w in words for w in path[1:]):
            found.append(body)
    return found


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_in_help_is_in_the_commands_section(path: tuple[str, ...],
                                                         command: click.Command) -> None:
    sections = sections_of(path)
    assert sections, f"docs/cli.md has no section for `{' '.join(path)}`"
    text = "\n".join(sections)
    missing = sorted(o for o in long_options(command) if f"{o}" not in text)
    assert not missing, f"`{' '.join(path)} --help` lists {missing}, docs/cli.md does not"


@pytest.mark.parametrize(("heading", "body"), SECTIONS, ids=[h for h, _ in SECTIONS])
def test_every_option_a_heading_names_exists(heading: str, body: str) -> None:
    words = re.findall(r"[a-z][a-z-]*", heading)
    covered = [c for p, c in COMMANDS if p[0] == words[0] and all(w in words for w in p[1:])]
    known = set().union(*(long_options(c) for c in covered)) if covered else set()
    named = set(re.findall(r"--[a-z][a-z-]*", heading))
    assert named <= known, f"`{heading}` names {sorted(named - known)}, --help does not"


def test_every_global_option_is_in_the_global_options_section() -> None:
    section = DOC.split("## Global options", 1)[1].split("\n## ", 1)[0]
    for option in long_options(cli) - {"--version"}:
        assert f"`{option}" in section, option
