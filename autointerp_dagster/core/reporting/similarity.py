"""Plain-text tables of `sae_similarity` rows: each pair's similarities beside the controls."""

from __future__ import annotations

from ..store import ResultsStore

_HEADER = (f"{'sae_a':38} {'sae_b':38} {'similarity':22} {'control':12} {'mean [95% CI]':26} "
           f"{'share>thr':9}  pairs")


def format_similarity_rows(rows: list[dict]) -> str:
    return "\n".join([_HEADER, *(_line(row) for row in rows)])


def format_similarity(store: ResultsStore, keys: list[str]) -> str:
    """Every stored row among `keys`, controls (sae_b = sae_a) first."""
    rows = store.query(
        "SELECT * FROM sae_similarity WHERE list_contains(?, sae_a) AND list_contains(?, sae_b) "
        "ORDER BY sae_a <> sae_b, sae_a, sae_b, method, control", [keys, keys]).to_pylist()
    return format_similarity_rows(rows)


def _line(row: dict) -> str:
    if row["mean"] is None:
        mean = "n/a"
    elif row["ci_low"] is None:
        mean = f"{row['mean']:.3f}"
    else:
        mean = f"{row['mean']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    share = "n/a" if row["share_above"] is None else f"{row['share_above']:.3f}"
    return (f"{row['sae_a']:38} {row['sae_b']:38} {row['method']:22} {row['control']:12} {mean:26} "
            f"{share:9}  {row['n_pairs']}")
