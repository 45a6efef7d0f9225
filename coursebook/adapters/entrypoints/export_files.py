"""The files the command line writes for other tools (CSV, iCalendar, HTML, seal files,
log files), and what it never does to get there.

- It never writes over the store, one of its SQLite companions (`-wal`, `-shm`,
  `-journal`) or its key file, even with `--force`, whatever the path is spelt as (a
  relative path, `..`, a symbolic link in a parent directory or a hard link).
- It never follows a symbolic link: a FILE that is one is refused, even with `--force`
  (give the real path).
- It never replaces an existing file unless asked to (`--force`), and then atomically: a
  new file is written beside it and renamed over it, so a reader sees the old file or the
  new one, never half of one; with `--force` or not, a new file is owner-only (0600).
- A FILE that is not a regular file (a directory, a device, a pipe) is refused.

Every refusal is an `ExportRefused` naming the option; the command line exits 2 with it
and writes nothing. `check_export` only checks (call it before doing the work, so that a
refused path costs nothing); `write_export` checks, then writes.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

__all__ = ["ExportRefused", "check_export", "check_log_file", "protected_files",
           "write_export"]

_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class ExportRefused(Exception):
    """A file the command line was asked to write, and will not (the message says why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def protected_files(store: str) -> list[Path]:
    """The store's own files: never an export's destination."""
    from coursebook.bootstrap import is_postgres, key_file_for

    files = [key_file_for(store)]
    if not is_postgres(store):
        path = Path(store)
        files += [path, path.with_suffix(".key"),
                  *(Path(f"{store}{suffix}") for suffix in _SQLITE_COMPANIONS)]
    return files


def _real(path: Path) -> Path:
    """The path with its directories resolved, its last part as given (not followed)."""
    return Path(os.path.realpath(path.parent)) / path.name


def _is_protected(path: Path, found: os.stat_result | None, store: str) -> bool:
    here = _real(path)
    for own in protected_files(store):
        if here == Path(os.path.realpath(own)):
            return True
        if found is not None:
            try:
                theirs = own.stat()
            except OSError:
                continue
            if (theirs.st_dev, theirs.st_ino) == (found.st_dev, found.st_ino):
                return True  # a hard link to one of them
    return False


def check_export(path: str | os.PathLike[str], store: str | None, *, force: bool,
                 option: str, append: bool = False) -> Path:
    """The path `option` may write to, or `ExportRefused`. `store`: the target whose files
    are protected (None: none). `append`: an existing file is added to (log files)."""
    target = Path(path)
    try:
        found: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        found = None
    except OSError as error:
        raise ExportRefused(f"{option}: cannot use {path}: "
                            f"{error.strerror or type(error).__name__}") from None
    if found is not None and stat.S_ISLNK(found.st_mode):
        raise ExportRefused(f"{option}: {path} is a symbolic link, which coursebook never "
                            "writes through; give the real path")
    if store is not None and _is_protected(target, found, store):
        raise ExportRefused(f"{option}: {path} is the store or its key file; coursebook "
                            "never writes over them (give another path)")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise ExportRefused(f"{option}: {path} is not a regular file")
    if found is not None and not force and not append:
        raise ExportRefused(f"{option}: {path} already exists; give a new path, or "
                            "--force to replace it")
    return target


def check_log_file(path: str | os.PathLike[str], store: str | None) -> Path:
    """A log file is added to, but never the store's own nor through a symbolic link."""
    return check_export(path, store, force=False, option="--log-file", append=True)


def write_export(path: str | os.PathLike[str], content: str | bytes, store: str | None, *,
                 force: bool, option: str) -> Path:
    """Checks `path` (`check_export`) and writes `content` (str as UTF-8) there."""
    target = check_export(path, store, force=force, option=option)
    data = content.encode("utf-8") if isinstance(content, str) else content
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    if not force:  # created here or not at all: never over a file made meanwhile
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            raise ExportRefused(f"{option}: {path} already exists; give a new path, or "
                                "--force to replace it") from None
        _write_all(fd, data, target)
        return target
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, flags, 0o600)
    try:
        _write_all(fd, data, partial)
        os.replace(partial, target)  # replaces the name: never writes through a link
    finally:
        partial.unlink(missing_ok=True)
    return target


def _write_all(fd: int, data: bytes, path: Path) -> None:
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
