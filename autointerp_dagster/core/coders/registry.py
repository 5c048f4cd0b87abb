"""Which sparse coders a deployment has, and under which keys.

Coders come from the settings (`saes:`) and from the watched directory (`sae_dir`, by
default `$AUTOINTERP_HOME/saes`). Each gets a key `model/hookpoint[/name]`: the name
(the folders above a sparsify hookpoint folder, or a configured `name`) keeps two coders
on one hookpoint apart, so they never share a partition or a cache folder. With `coders.random_twins` every
coder but neurons has a random twin, `model/hookpoint/random-<name>` (formats/random_twin.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import CodersConfig, CoderSource
from .base import SparseCoderError
from .discovery import discover_coders
from .formats.random_twin import twin_source
from .identity import coder_identity, coder_key, source_fingerprint


class CoderSettings(Protocol):
    """The parts of the deployment settings that say which coders exist."""

    @property
    def coders(self) -> CodersConfig: ...

    @property
    def watched_sae_dir(self) -> Path: ...

    @property
    def alias(self) -> str: ...


@dataclass(frozen=True)
class RegisteredCoder:
    key: str
    source: CoderSource
    hookpoint: str

    def fingerprint(self) -> str:
        return source_fingerprint(self.source)


def registered_coders(settings: CoderSettings) -> dict[str, RegisteredCoder]:
    """All coders of the deployment by key; two sources that would share a key are an error."""
    sources = list(settings.coders.paths)
    if settings.watched_sae_dir.is_dir():
        sources += discover_coders(settings.watched_sae_dir)
    coders: dict[str, RegisteredCoder] = {}
    for source in sources:
        hookpoint, name = coder_identity(source)
        key = coder_key(settings.alias, hookpoint, name)
        if key in coders:
            raise SparseCoderError(
                f"coders {coders[key].source.path!r} and {source.path!r} would share the key {key!r}; "
                "give one of them a distinct `name`"
            )
        coders[key] = RegisteredCoder(key=key, source=source, hookpoint=hookpoint)
        if settings.coders.random_twins and source.kind != "neurons":
            twin = twin_source(source, hookpoint, name)
            twin_key = coder_key(settings.alias, hookpoint, twin.name)
            coders[twin_key] = RegisteredCoder(key=twin_key, source=twin, hookpoint=hookpoint)
    return dict(sorted(coders.items()))


def lookup(settings: CoderSettings, keys: list[str]) -> dict[str, RegisteredCoder]:
    """The registered coders of `keys` (one scan of the SAE folder), or a clear error for a vanished one."""
    coders = registered_coders(settings)
    missing = [key for key in keys if key not in coders]
    if missing:
        known = "\n  ".join(coders) or "(none)"
        raise SparseCoderError(
            f"no sparse coder with key(s) {missing}: removed or renamed since their partitions were added. "
            f"Known coders:\n  {known}"
        )
    return {key: coders[key] for key in keys}
