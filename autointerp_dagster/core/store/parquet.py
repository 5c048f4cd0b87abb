"""The results store as Parquet files that any number of writers share: no lock, no service.

Each slice a computation owns (what `replace_rows`' condition selects: one coder's latent range, made by these
explainers or scorers) is one file, `<root>/<table>/<slice id>.parquet`, written under a temporary name and
renamed into place, so a reader sees the old file or the new one and the last writer of a slice wins. A slice
that overlaps rows of other files (a re-run that owns a different set of scorers, say) rewrites those files
without the rows it now owns. The LLM tables are append-only: each write is a new file named by its writer, and
readers see one row per key (the first written); `compact` merges the files. Readers get an in-memory DuckDB
connection with one view per table over its files, so every query written for the DuckDB file runs unchanged.

The root is a local folder or an object store URL (`s3://bucket/prefix`, through fsspec: s3fs reads the AWS_*
variables for credentials and endpoint). There a file is one PUT, which is atomic, so no rename is needed.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from ..keys import stable_id
from .tables import IN_LATENT_RANGE, LLM_CALLS, LLM_RESPONSES, TABLES

APPENDED = {"llm_responses": ("cache_key", LLM_RESPONSES), "llm_calls": ("call_id", LLM_CALLS)}


class ParquetStore:
    """The ResultsStore interface over a folder of Parquet files (the `parquet` store backend)."""

    def __init__(self, root: str | Path, folder: str | Path | None = None):
        """`folder`: a local folder for side files (the LLM journal); default the root when it is local."""
        remote = fsspec.utils.get_protocol(str(root)) not in ("file", "local")
        # Other writers add files all the time: never answer a listing from a cache.
        options = {"skip_instance_cache": True, "use_listings_cache": False} if remote else {}
        self.fs, self._base = fsspec.core.url_to_fs(str(root), **options)
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        self.root = Path(self._base) if self.local else f"{self.fs.protocol[0]}://{self._base}"
        self.folder = Path(folder) if folder else self.root if self.local else Path(tempfile.gettempdir())

    def _url(self, path: str) -> str:
        """A path of the filesystem as DuckDB opens it."""
        return path if self.local else f"{self.fs.protocol[0]}://{path}"

    def _files(self, table: str) -> list[str]:
        """The table's files, as DuckDB names them."""
        return sorted(self._url(p) for p in self.fs.glob(f"{self._base}/{table}/*.parquet"))

    def _source(self, table: str) -> str:
        return f"read_parquet('{self._url(self._base)}/{table}/*.parquet', union_by_name = true)"

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory connection with a view per table that has files (the LLM tables always)."""
        con = duckdb.connect()
        if not self.local:
            con.register_filesystem(self.fs)
        try:
            for table in TABLES:
                if self._files(table):
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM {self._source(table)}")
            for table, (key, schema) in APPENDED.items():
                if self._files(table):  # the first row written of each key, as INSERT OR IGNORE keeps
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM {self._source(table)} "
                                f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY created_at) = 1")
                else:
                    con.register(f"_{table}_empty", schema.empty_table())
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}_empty")
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: Sequence | None = None) -> pa.Table:
        with self.connect() as con:
            return con.sql(sql, params=params or None).to_arrow_table()

    def has_table(self, table: str) -> bool:
        return bool(self._files(table)) or table in APPENDED

    def duplicate_keys(self, table: str, key: tuple[str, ...], where: str, params: Sequence = ()) -> int:
        if not self._files(table):
            return 0
        found = self.query(f"SELECT count(*) - count(DISTINCT ({', '.join(key)})) AS n FROM {table} WHERE {where}",
                           list(params))
        return int(found.column(0)[0].as_py())

    def replace_rows(self, table: str, rows: pa.Table, where: str, params: Sequence = ()) -> int:
        """The slice `where` selects becomes `rows`: its own file, replaced whole (see the module's docstring)."""
        schema = TABLES[table]
        missing = set(schema.names) - set(rows.column_names)
        if missing:
            raise ValueError(f"rows for {table} lack the column(s) {sorted(missing)}")
        rows = rows.select(schema.names).cast(schema)
        name = f"{stable_id({'where': where, 'params': [str(p) for p in params]}, 16)}.parquet"
        target = f"{self._url(self._base)}/{table}/{name}"
        self._delete(table, where, params, rows, keep=target)
        self._write(rows, target)
        return rows.num_rows

    def delete_orphan_scores(self, sae: str, start: int, end: int) -> int:
        """As ResultsStore.delete_orphan_scores: scores and judgments of explanations that no longer exist."""
        if not all(self._files(t) for t in ("explanations", "scores")):
            return 0
        orphan = (f"{IN_LATENT_RANGE} AND explanation_id NOT IN "
                  f"(SELECT explanation_id FROM explanations WHERE {IN_LATENT_RANGE})")
        return sum(self._delete(table, orphan, [sae, start, end, sae, start, end])
                   for table in ("scores", "judgments") if self._files(table))

    def _delete(self, table: str, where: str, params: Sequence, incoming: pa.Table | None = None,
                keep: Path | None = None) -> int:
        """Rewrites the files (but `keep`) that hold rows matching `where`, without them; returns rows dropped."""
        if not self._files(table):
            return 0
        dropped = 0
        with self.connect() as con:
            if incoming is not None:
                con.register("incoming_rows", incoming)
            hits = con.execute(f"SELECT filename, count(*) FROM read_parquet('{self._url(self._base)}/{table}/"
                               f"*.parquet', union_by_name = true, filename = true) WHERE {where} GROUP BY filename",
                               list(params)).fetchall()
            for path, n in hits:
                if path == keep:
                    continue
                kept = con.execute(f"SELECT * EXCLUDE (filename) FROM read_parquet('{path}', filename = true) "
                                   f"WHERE ({where}) IS NOT TRUE", list(params)).to_arrow_table()
                if kept.num_rows:
                    self._write(kept, path)
                else:
                    self._remove(path)
                dropped += n
        return dropped

    def append(self, tables: dict[str, pa.Table]) -> None:
        """LLM tables' new rows, as files of this writer; a key already stored keeps its first row."""
        for table, rows in tables.items():
            if rows.num_rows:
                self._write(rows, f"{self._url(self._base)}/{table}/{os.getpid()}-{uuid.uuid4().hex}.parquet")

    def _write(self, rows: pa.Table, url: str) -> None:
        """A local file is written beside its place under a name no reader's glob matches, then renamed; an
        object is one PUT."""
        if not self.local:
            buffer = io.BytesIO()
            pq.write_table(rows, buffer)
            self.fs.pipe_file(url, buffer.getvalue())
            return
        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(rows, temporary)
        os.replace(temporary, path)

    def _remove(self, url: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(url)

    def compact(self) -> dict[str, int]:
        """Merges each LLM table's files into one (one row per key); returns the files merged per table."""
        merged = {}
        for table, (key, _) in APPENDED.items():
            files = self._files(table)
            if len(files) < 2:
                continue
            listed = ", ".join(f"'{f}'" for f in files)
            with self.connect() as con:
                rows = con.execute(f"SELECT * FROM read_parquet([{listed}], union_by_name = true) QUALIFY "
                                   f"row_number() OVER (PARTITION BY {key} ORDER BY created_at) = 1").to_arrow_table()
            self._write(rows, f"{self._url(self._base)}/{table}/compacted-{uuid.uuid4().hex}.parquet")
            for f in files:  # only what was read: files appended meanwhile stay
                self._remove(f)
            merged[table] = len(files)
        return merged
