"""What a coder is called and whether its files changed, answered without reading its weights."""

from __future__ import annotations

from ..config import CoderSource
from ..keys import files_signature, stable_id
from .base import SparseCoderError
from .formats.gemmascope import gemmascope_site
from .formats.neurons import neuron_identity
from .formats.saelens import saelens_hookpoint
from .locate import parse_hub_path, resolve_local, source_format

FORBIDDEN_KEY_CHARS = "|,[]"


def coder_identity(source: CoderSource) -> tuple[str, str | None]:
    """(hookpoint, name) of a coder without reading its weights (sensors call this every few seconds).

    Matches what `load_coder` would give; Hub sources are resolved (downloaded) only when their
    hookpoint cannot be read off the path: a sparsify subfolder is named after its hookpoint.
    """
    if source.kind == "neurons":
        return neuron_identity(source)
    if source.hookpoint:
        return source.hookpoint, source.name
    hub = parse_hub_path(source.path)
    if hub is not None and hub[1] and source.kind == "sparsify":
        return hub[1].rstrip("/").rsplit("/", 1)[-1], source.name
    local = resolve_local(source)
    fmt = source_format(source, local)
    if fmt == "sparsify":
        return local.name, source.name
    if fmt == "saelens":
        return saelens_hookpoint(source, local), source.name
    return gemmascope_site(source)[0], source.name


def source_fingerprint(source: CoderSource) -> str:
    """Cheap change detector: file names, sizes and mtimes, not contents."""
    if source.kind == "neurons":
        return f"neurons:{source.hookpoint}:{source.k}"
    if source.kind == "random":  # the trained coder's files give the shape; the weights follow from its path
        return "random:" + source_fingerprint(CoderSource(path=source.path, hookpoint=source.hookpoint))
    if parse_hub_path(source.path) is not None:
        return source.path
    local = resolve_local(source)
    files = [local] if local.is_file() else sorted(
        p for p in local.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    return stable_id(files_signature(files), 16)


def coder_key(model_alias: str, hookpoint: str, name: str | None) -> str:
    """'model/hookpoint[/name]', the id under which a coder's results are stored.

    The characters refused here separate keys in lists and partition names downstream.
    """
    parts = [("model alias", model_alias), ("hookpoint", hookpoint)]
    if name is not None:
        parts.append(("coder name", name))
    for what, value in parts:
        if not value:
            raise SparseCoderError(f"{what} must not be empty")
        bad = sorted({c for c in value if c in FORBIDDEN_KEY_CHARS or c.isspace()})
        if bad:
            raise SparseCoderError(
                f"{what} {value!r} contains {''.join(bad)!r}; coder keys may not contain "
                "'|', ',', '[', ']' or whitespace"
            )
    return "/".join(value for _, value in parts)
