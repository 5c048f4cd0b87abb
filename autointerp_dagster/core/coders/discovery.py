"""Finding the coders dropped into a watched directory, named so that their keys stay distinct."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import CoderSource
from .base import SparseCoderError
from .locate import format_of


def _hidden_or_partial(name: str) -> bool:
    return name.startswith(".") or name.endswith(".tmp")


def discover_coders(root: Path) -> list[CoderSource]:
    """Every coder folder under a watched directory, named so that keys stay distinct.

    A sparsify folder is named after its hookpoint, so the folders above it form the
    name; SAELens and Gemma Scope folders are named by their whole relative path.
    Hidden folders and `*.tmp` folders (copies in progress) are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise SparseCoderError(f"watched coder directory {root} does not exist")
    found: list[CoderSource] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden_or_partial(d))
        fmt = format_of(set(filenames))
        if fmt is None:
            continue
        dirnames[:] = []  # a coder folder's subfolders are not further coders
        folder = Path(dirpath)
        rel = folder.relative_to(root).parts
        if fmt == "sparsify":
            hookpoint, name = folder.name, "-".join(rel[:-1]) or None
        else:
            hookpoint, name = None, "-".join(rel) or None
        found.append(CoderSource(path=str(folder), hookpoint=hookpoint, name=name))
    found.sort(key=lambda s: s.path)
    seen: dict[tuple, str] = {}
    for s in found:
        other = seen.setdefault((s.hookpoint, s.name), s.path)
        if other != s.path:
            raise SparseCoderError(
                f"coders {other} and {s.path} get the same name {s.name!r}; rename one folder"
            )
    return found
