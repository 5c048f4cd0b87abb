"""How results are named and dated: one id helper and one clock for every table.

An id is a prefix of the sha256 of what made a result (a string as it is, anything else as JSON with sorted
keys), so equal inputs give equal ids on every machine and run, and a changed setting gives a new id instead
of overwriting results made otherwise. Ids already stored were made this way with these exact encodings:
`compact` (no spaces after separators) is the explainer id's; a change to either re-keys stored results, which
tests/test_result_ids.py guards against.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def stable_id(value: Any, length: int | None = None, *, compact: bool = False) -> str:
    """The first `length` hex digits (all 64 when None) of the sha256 of `value`."""
    if isinstance(value, str):
        encoded = value
    else:
        separators = (",", ":") if compact else None
        encoded = json.dumps(value, sort_keys=True, separators=separators, default=str, ensure_ascii=not compact)
    digest = hashlib.sha256(encoded.encode()).hexdigest()
    return digest if length is None else digest[:length]


def files_signature(files) -> str:
    """Names, sizes and modification times of files, one line each: what tells a changed file apart without
    reading it (coder and model fingerprints)."""
    lines = []
    for f in files:
        stat = f.stat()
        lines.append(f"{f.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
    return "".join(lines)


def utc_now() -> datetime:
    """Now, in UTC, to the microsecond: every `created_at` column (tables without a time zone store it as UTC)."""
    return datetime.now(UTC)
