"""The `coursebook` command line (docs/cli.md; the documents it prints: docs/reference.md).

Exit codes: 0 success; 1 some commands rejected (or a query found nothing, or `migrate`
found records this code does not read); 2 usage error or unusable input file; 3 `verify`
found tampering; 4 the store cannot be opened.
Each sub-command lives in its own module and registers itself on `main` below.
"""

from __future__ import annotations

import sys

import click

from coursebook.adapters.entrypoints.cli import (
    audit,
    backup,
    calendar,
    catalogue,
    compliance,
    course,
    demo,
    export,
    importing,
    keys,
    migrate,
    projections,
    recall,
    store,
    verify,
)
from coursebook.adapters.entrypoints.cli.common import Context, run

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "target", metavar="TARGET", default=None,
              help="SQLite file or postgresql:// URL (default: $COURSEBOOK_DB, "
                   "else ./coursebook.db).")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Output: tables or one JSON document.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Write log lines here instead of standard error.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info",
              show_default=True, help="debug: also one line per command applied in a batch "
                                      "(info logs one per batch and per rejected line).")
@click.version_option(package_name="coursebook")
@click.pass_context
def cli(ctx: click.Context, target: str | None, output_format: str,
        log_file: str | None, log_level: str) -> None:
    """Treatment courses for aesthetic clinics: what was done, why, and whether it was safe.

    Global options may come before or after the sub-command. Not on a terminal, tables
    are printed whole as tab-separated values; --format json prints one JSON document.
    """
    ctx.obj = Context.create(target, output_format, log_file, log_level)


for module in (store, catalogue, importing, course, calendar, compliance, recall, audit,
               export, projections, demo, verify, backup, migrate, keys):
    module.register(cli)


def main() -> None:
    sys.exit(run(cli))
