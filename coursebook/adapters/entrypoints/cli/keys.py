"""`coursebook keys status|rotate`: pending erasures, and master-key rotation
(docs/privacy.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_STORE,
    Context,
    emit,
    table,
    user_error,
)

if TYPE_CHECKING:  # the engine is imported where used: start-up and `--help` need none
    from rich.console import Console


def register(cli: click.Group) -> None:
    cli.add_command(keys)


@click.group()
def keys() -> None:
    """The store's keys: pending erasures, and rotating the master key."""


def _render_pending(console: Console, pending: list[dict[str, Any]]) -> None:
    if not pending:
        console.print("no pending erasure: every erased key is gone from the store's files")
        return
    console.print(table("Pending erasures", ["kind", "patient_ref", "since", "reason"],
                        [[p["kind"], p["patient_ref"] or "", p["since"], p["reason"]]
                         for p in pending]))


@keys.command()
@click.option("--complete", is_flag=True,
              help="First try to finish the pending erasures (waits a moment for readers "
                   "and locks).")
@click.pass_obj
def status(ctx: Context, complete: bool) -> None:
    """How many data keys are stored, and the erasures not yet finished (old copies of a
    key may still be in the store's files: a reader held an older snapshot, or the key
    table was locked). The next write finishes them, or `--complete`."""
    with ctx.store() as app:
        document = app.key_status(complete=complete)

    def render(console: Console) -> None:
        console.print(f"{document['keys']} patient data keys")
        _render_pending(console, document["pending_erasures"])

    emit(ctx, document, render)


@keys.command()
@click.option("--new-key-file", type=click.Path(dir_okay=False), default=None,
              help="The new master key, from this file (owner-only). Default: "
                   "$COURSEBOOK_NEW_MASTER_KEY, else a new random key written to the store's "
                   "key file.")
@click.pass_obj
def rotate(ctx: Context, new_key_file: str | None) -> None:
    """Re-wrap every stored key under a new master key, in one transaction, without
    touching any event. Stop every other process using the store first. With the key in
    a key file, the file is replaced by the new key; with COURSEBOOK_MASTER_KEY, set it
    to the new key afterwards."""
    from coursebook.bootstrap import rotate_master_key
    from coursebook.errors import StoreUnavailable

    try:
        document = rotate_master_key(ctx.target, new_key_file=new_key_file)
    except ValueError as error:
        raise user_error(str(error)) from None
    except StoreUnavailable as error:
        raise user_error(str(error), EXIT_STORE) from None
    key_file = document["key_file"]

    def render(console: Console) -> None:
        console.print(f"{document['keys']} stored keys re-wrapped under the new master key")
        if key_file is not None:
            console.print(f"the key file {key_file} now holds the new master key")
        else:
            console.print("set COURSEBOOK_MASTER_KEY to the new master key before the "
                          "next command")
        if document["pending"]:
            _render_pending(console, document["pending"])

    emit(ctx, document, render)
