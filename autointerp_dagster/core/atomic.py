"""Builds that appear whole: written at a temporary sibling, then renamed into place.

A crash or kill mid-build leaves the previous target (or none), never a partial one.
Temporary names are unique per build, so concurrent builders of one target never write
into each other's files (the last to finish wins), and they end in ``.tmp``, which coder
discovery skips, so a folder being written is never taken for a finished one.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from .errors import UserError


class NoSpaceError(UserError, OSError):
    """The disk filled up during a build; the previous target is intact."""


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yields a fresh path beside `target` to write a file or a folder at.

    On success what was written replaces `target`; on any error it is removed and
    `target` is left as it was. Leftovers of killed builds of `target` are removed first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    tmp = _sibling(target)
    try:
        yield tmp
        _replace(tmp, target)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and (exc.errno == errno.ENOSPC or "No space left" in str(exc)):
            free = shutil.disk_usage(target.parent).free
            raise NoSpaceError(f"no space left on the disk holding {target.parent} ({free / 1e6:,.1f} MB free) while "
                               f"writing {target.name}; nothing was replaced: {target} is as it was. Free space, or "
                               "move AUTOINTERP_HOME (setting `home`) to a larger disk, then run again") from exc
        raise


def remove_leftovers(target: Path) -> None:
    """Deletes temporaries of `target` whose builder process is gone (live builds are kept)."""
    pattern = re.compile(rf"{re.escape(target.name)}\.(\d+)-[0-9a-f]{{8}}(\.old)?\.tmp")
    for path in target.parent.glob(f"{glob.escape(target.name)}.*.tmp"):
        found = pattern.fullmatch(path.name)
        if found and not psutil.pid_exists(int(found.group(1))):
            _remove(path)


def _sibling(target: Path, tag: str = "") -> Path:
    return target.with_name(f"{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{tag}.tmp")


def _replace(tmp: Path, target: Path) -> None:
    if not tmp.is_dir():
        os.replace(tmp, target)  # one atomic rename, even over an existing file
        return
    # A folder cannot be renamed over a non-empty one: move the current one aside first.
    # Readers may find no folder for that instant, never a mix of two builds.
    while True:
        old = _sibling(target, ".old")
        try:
            target.rename(old)
        except FileNotFoundError:
            pass
        try:
            tmp.rename(target)
            return
        except OSError as exc:  # another builder renamed its folder in between: go again
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        finally:
            _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
