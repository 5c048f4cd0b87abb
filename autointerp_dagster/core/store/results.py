"""The results store: one DuckDB file with short-lived connections.

DuckDB lets one process write a file at a time, and a Dagster run may have several
processes. So every access opens a connection, does its work and closes it, and a
connection that finds the file locked waits and tries again instead of failing, saying
(logger `autointerp_dagster...`, so in the run's log) which process holds the file.
Heavy data (activations, tokens) lives in Parquet files beside the database; the
tables here hold results keyed so that a re-run replaces rows instead of adding them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from .tables import IN_LATENT_RANGE, LLM_DDL, TABLES

_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock", "database is locked")
_process_lock = threading.RLock()
log = logging.getLogger(__name__)


class ResultsStore:
    """Opens short connections to the project's DuckDB file and replaces rows by key."""

    def __init__(self, db_path: str | Path, lock_timeout_s: float = 120.0):
        self.db_path = Path(db_path)
        self.folder = self.db_path.parent  # where side files (the LLM journal) live
        self.lock_timeout_s = lock_timeout_s

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held for one unit of work; retries while another process holds the lock."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        retrying = Retrying(
            retry=retry_if_exception(_is_lock_error),
            stop=stop_after_delay(self.lock_timeout_s),
            wait=wait_random_exponential(multiplier=0.1, max=4.0),
            before_sleep=self._say_waiting(),
            reraise=True,
        )
        with _process_lock:
            con = retrying(duckdb.connect, str(self.db_path))
            try:
                yield con
            finally:
                con.close()

    def _say_waiting(self):
        """A tenacity hook that logs, at the first wait and every 15 s after, who holds the file."""
        said = [0.0]

        def say(state) -> None:
            if time.monotonic() - said[0] < 15.0:
                return
            said[0] = time.monotonic()
            holder = re.search(r"PID (\d+)", str(state.outcome.exception()))
            log.warning("the results file %s is held by another process%s; waiting up to %.0f s in all for it "
                        "(waited %.0f s)", self.db_path, f" (PID {holder.group(1)})" if holder else "",
                        self.lock_timeout_s, state.seconds_since_start)

        return say

    def query(self, sql: str, params: Sequence | None = None) -> pa.Table:
        """Runs a query and returns its result as an Arrow table."""
        with self.connect() as con:
            return con.sql(sql, params=params or None).to_arrow_table()

    def has_table(self, table: str) -> bool:
        with self.connect() as con:
            return _table_exists(con, table)

    def duplicate_keys(self, table: str, key: tuple[str, ...], where: str, params: Sequence = ()) -> int:
        """Rows in the `where` slice of `table` beyond one per `key` (0 when keys are unique)."""
        with self.connect() as con:
            found = con.execute(
                f"SELECT count(*) - count(DISTINCT ({', '.join(key)})) FROM {table} WHERE {where}", list(params)
            ).fetchone()
        return int(found[0])

    def delete_orphan_scores(self, sae: str, start: int, end: int) -> int:
        """Deletes the scores and judgments of a latent range whose explanation no longer exists (it was
        replaced), so no summary averages in judgments of an explanation nobody can see; returns rows deleted."""
        deleted = 0
        with self.connect() as con:
            if not all(_table_exists(con, t) for t in ("explanations", "scores", "judgments")):
                return 0
            for table in ("scores", "judgments"):
                deleted += con.execute(
                    f"DELETE FROM {table} WHERE {IN_LATENT_RANGE} AND explanation_id NOT IN "
                    f"(SELECT explanation_id FROM explanations WHERE {IN_LATENT_RANGE})",
                    [sae, start, end, sae, start, end]).fetchone()[0]
        return deleted

    def replace_rows(self, table: str, rows: pa.Table, where: str, params: Sequence = ()) -> int:
        """Deletes the rows matching `where` and inserts `rows`, in one transaction.

        `where` names the slice a computation owns (one SAE, one latent range), so a re-run
        of that slice replaces exactly what it wrote before. Rows are cast to the table's schema
        (`tables.TABLES`); the table is created with it on first use, and a table made by an older
        version gains the columns it lacks (null in its old rows, which therefore match no new key).
        """
        schema = TABLES[table]
        missing = set(schema.names) - set(rows.column_names)
        if missing:
            raise ValueError(f"rows for {table} lack the column(s) {sorted(missing)}")
        rows = rows.select(schema.names).cast(schema)
        with self.connect() as con, transaction(con, incoming_rows=rows):
            if not _table_exists(con, table):
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming_rows LIMIT 0")
            else:
                _add_missing_columns(con, table)
                con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
        return rows.num_rows


    def append(self, tables: dict[str, pa.Table]) -> None:
        """LLM tables' new rows in one transaction; a key already stored keeps its row (INSERT OR IGNORE)."""
        if not any(rows.num_rows for rows in tables.values()):
            return
        with self.connect() as con:
            con.execute(LLM_DDL)
            with transaction(con, **{f"new_{table}": rows for table, rows in tables.items()}):
                for table in tables:
                    con.execute(f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM new_{table}")

    def compact(self) -> dict[str, int]:
        """Nothing to merge: one file holds everything (the parquet backend merges its LLM files here)."""
        return {}


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[None]:
    """One transaction with Arrow `tables` visible under their names; rolled back on any error."""
    for name, table in tables.items():
        con.register(name, table)
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in tables:
            con.unregister(name)


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and any(m in str(exc) for m in _LOCK_MESSAGES)


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchone()
    return bool(found and found[0])


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Columns of `incoming_rows` that `table` lacks, added with the types DuckDB gives the incoming rows."""
    have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}
    for name, kind, *_ in con.execute("DESCRIBE SELECT * FROM incoming_rows").fetchall():
        if name not in have:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')
