"""The results store on a real DuckDB file: a re-run replaces its slice; duplicate keys are counted."""

from __future__ import annotations

import pyarrow as pa


def test_replace_rows_owns_its_slice_and_duplicates_are_counted(store):
    rows = pa.table({"sae": ["a", "a", "b"], "latent": [1, 2, 1], "value": [0.1, 0.2, 0.3]})
    store.replace_rows("t", rows, "sae = ?", ["a"])
    store.replace_rows("t", rows.slice(0, 2), "sae = ?", ["a"])  # a re-run of slice "a"
    assert store.query("SELECT sae, count(*) AS n FROM t GROUP BY sae ORDER BY sae").to_pylist() == [
        {"sae": "a", "n": 2}, {"sae": "b", "n": 1}]
    assert store.duplicate_keys("t", ("sae", "latent"), "latent >= ?", [0]) == 0
    store.replace_rows("t", rows.slice(0, 1), "sae = 'none'")  # adds without replacing: a duplicate
    assert store.duplicate_keys("t", ("sae", "latent"), "latent >= ?", [0]) == 1
    assert store.duplicate_keys("t", ("sae", "latent"), "sae = ?", ["b"]) == 0
