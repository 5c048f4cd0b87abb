"""Finding a coder's files, locally or on the Hugging Face Hub, and telling its family by them."""

from __future__ import annotations

from pathlib import Path

from ..config import CoderSource
from .base import SparseCoderError
from .formats.gemmascope import GEMMASCOPE_FILES
from .formats.saelens import SAELENS_FILES
from .formats.sparsify import SPARSIFY_FILES


def parse_hub_path(path: str) -> tuple[str, str | None] | None:
    """'hf://org/repo/sub/dir' -> ('org/repo', 'sub/dir'); other paths -> None."""
    if not path.startswith("hf://"):
        return None
    parts = path[len("hf://") :].strip("/").split("/")
    if len(parts) < 2 or any(not p for p in parts):
        raise SparseCoderError(
            f"Hub path {path!r} is malformed: expected hf://org/repo or hf://org/repo/sub/folder"
        )
    return "/".join(parts[:2]), "/".join(parts[2:]) or None


def resolve_local(source: CoderSource) -> Path:
    """The local folder or file holding the coder, downloading Hub coders first."""
    hub = parse_hub_path(source.path)
    if hub is None:
        local = Path(source.path).expanduser()
        if not source.path or not local.exists():
            raise SparseCoderError(f"sparse coder path {source.path!r} does not exist")
        return local
    repo, sub = hub
    from huggingface_hub import snapshot_download

    try:
        root = Path(snapshot_download(repo, allow_patterns=f"{sub}/*" if sub else None))
    except Exception as exc:
        raise SparseCoderError(
            f"could not download {source.path} from the Hugging Face Hub "
            f"(repo {repo}, folder {sub or '/'}): {exc}"
        ) from exc
    local = root / sub if sub else root
    if not local.exists():
        raise SparseCoderError(f"Hub repo {repo} has no folder {sub!r} (from {source.path})")
    return local


def format_of(file_names: set[str]) -> str | None:
    """The coder family whose files are all among `file_names`, if any."""
    if all(f in file_names for f in SPARSIFY_FILES):
        return "sparsify"
    if all(f in file_names for f in SAELENS_FILES):
        return "saelens"
    if any(f in file_names for f in GEMMASCOPE_FILES):
        return "gemmascope"
    return None


def detect_format(folder_or_file: Path) -> str:
    """The coder family of a folder (or a Gemma Scope params file), judged by its files."""
    p = Path(folder_or_file)
    if p.is_file():
        if p.name in GEMMASCOPE_FILES:
            return "gemmascope"
        raise SparseCoderError(
            f"{p} is a file; point to the folder holding the coder "
            f"(only Gemma Scope {' or '.join(GEMMASCOPE_FILES)} may be given as a file)"
        )
    if not p.is_dir():
        raise SparseCoderError(f"sparse coder path {p} does not exist")
    names = {c.name for c in p.iterdir() if c.is_file()}
    fmt = format_of(names)
    if fmt is None:
        found = ", ".join(sorted(names)[:20]) or "no files"
        raise SparseCoderError(
            f"{p} holds no sparse coder (found: {found}). Expected one of: "
            f"sparsify = {' + '.join(SPARSIFY_FILES)}; SAELens = {' + '.join(SAELENS_FILES)}; "
            f"Gemma Scope = {' or '.join(GEMMASCOPE_FILES)}"
        )
    return fmt


def source_format(source: CoderSource, local: Path) -> str:
    """The configured kind, or the family its files show when the kind is `auto`."""
    return detect_format(local) if source.kind == "auto" else source.kind
