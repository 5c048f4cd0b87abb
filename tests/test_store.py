"""The results store on a real DuckDB file: a re-run replaces its slice; duplicate keys are counted."""

from __future__ import annotations

import pyarrow as pa
import pytest


def test_replace_rows_owns_its_slice_and_duplicates_are_counted(store):
    rows = pa.table({"sae": ["a", "a", "b"], "latent": [1, 2, 1], "status": ["ok"] * 3, "reason": [None] * 3,
                     "n_activating_windows": [4, 5, 6], "max_activation": [0.1, 0.2, 0.3]})
    store.replace_rows("latent_sampling", rows, "sae = ?", ["a"])
    store.replace_rows("latent_sampling", rows.slice(0, 2), "sae = ?", ["a"])  # a re-run of slice "a"
    assert store.query("SELECT sae, count(*) AS n FROM latent_sampling GROUP BY sae ORDER BY sae").to_pylist() == [
        {"sae": "a", "n": 2}, {"sae": "b", "n": 1}]
    assert store.duplicate_keys("latent_sampling", ("sae", "latent"), "latent >= ?", [0]) == 0
    store.replace_rows("latent_sampling", rows.slice(0, 1), "sae = 'none'")  # adds without replacing: a duplicate
    assert store.duplicate_keys("latent_sampling", ("sae", "latent"), "latent >= ?", [0]) == 1
    assert store.duplicate_keys("latent_sampling", ("sae", "latent"), "sae = ?", ["b"]) == 0


def test_rows_are_cast_to_the_table_schema_and_must_be_complete(tmp_path):
    from autointerp_dagster.core.store import ResultsStore

    store = ResultsStore(tmp_path / "r.duckdb")
    rows = pa.table({"sae": ["a"], "latent": [3], "n_activations": [5], "frequency": [0.5],
                     "max_activation": [1.0], "mean_activation": [0.5], "extra": ["dropped"]})
    store.replace_rows("latent_stats", rows, "sae = ?", ["a"])
    described = {r["column_name"]: r["column_type"] for r in store.query("DESCRIBE latent_stats").to_pylist()}
    assert described == {"sae": "VARCHAR", "latent": "INTEGER", "n_activations": "BIGINT", "frequency": "DOUBLE",
                         "max_activation": "FLOAT", "mean_activation": "FLOAT"}
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['frequency'\]"):
        store.replace_rows("latent_stats", rows.drop(["frequency"]), "sae = ?", ["a"])
    with pytest.raises(KeyError):
        store.replace_rows("no_such_table", rows, "sae = ?", ["a"])


def test_a_table_from_an_older_version_gains_the_new_columns(store):
    from autointerp_dagster.core.store.tables import LATENT_SAMPLING

    with store.connect() as con:  # as an older version made it: no max_activation column
        con.execute("CREATE TABLE latent_sampling (sae VARCHAR, latent INTEGER, status VARCHAR, reason VARCHAR, "
                    "n_activating_windows INTEGER)")
        con.execute("INSERT INTO latent_sampling VALUES ('old', 1, 'ok', NULL, 3)")
    rows = pa.Table.from_pylist([{"sae": "a", "latent": 2, "status": "ok", "reason": None,
                                  "n_activating_windows": 4, "max_activation": 1.5}], schema=LATENT_SAMPLING)
    store.replace_rows("latent_sampling", rows, "sae = ?", ["a"])
    found = store.query("SELECT sae, max_activation FROM latent_sampling ORDER BY sae").to_pylist()
    assert found == [{"sae": "a", "max_activation": 1.5}, {"sae": "old", "max_activation": None}]
