"""Paired comparison of two explainers, explainer models, judges or scorer configurations on the same latents.

Only latents scored under both (same SAE, latent and scorer, own explanations) are compared, so a
difference is never a difference in which latents happened to be scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..store import ResultsStore
from .metrics import mean_ci, metric_bounds

COLUMNS = ("explainer", "explainer_model", "judge", "scorer_config")
METRICS = ("auc", "balanced_accuracy", "accuracy", "precision", "recall", "f1")


@dataclass
class Comparison:
    scorer: str
    metric: str
    n_latents: int
    a: tuple[float | None, float | None, float | None]
    b: tuple[float | None, float | None, float | None]
    difference: tuple[float | None, float | None, float | None]


def pairing_sql(column: str, metric: str) -> str:
    """The query behind a comparison: one row per latent scored under both values.

    Pairs share everything but the compared column: the judge and scorer configuration when explainers are
    compared (each side's explainer model pinned by `compare` where given), the explainer when explainer models
    are, and the very explanation when judges or scorer configurations are."""
    same = [c for c in ("judge", "scorer_config") if c != column]
    if column == "explainer_model":
        same.append("explainer")
    if column in ("judge", "scorer_config"):
        same.append("explanation_id")
    return (f"SELECT a.sae, a.latent, a.scorer, a.{metric} AS a, b.{metric} AS b FROM scores a JOIN scores b "
            f"ON a.sae = b.sae AND a.latent = b.latent AND a.scorer = b.scorer "
            + "".join(f"AND a.{c} = b.{c} " for c in same)
            + f"WHERE a.control = 'none' AND b.control = 'none' AND a.{column} = ? AND b.{column} = ? "
            f"AND a.{metric} IS NOT NULL AND b.{metric} IS NOT NULL")


def compare(store: ResultsStore, column: str, a: str, b: str, metric: str = "auc",
            sae: str | None = None, models: tuple[str | None, str | None] = (None, None)) -> list[Comparison]:
    """`models`: when explainers are compared, the explainer model (`backend:model`) of each side; needed where
    one explainer configuration was run with several models, which would otherwise pair a latent twice."""
    if column not in COLUMNS:
        raise ValueError(f"compare by one of {COLUMNS}, not {column!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    sql, params = pairing_sql(column, metric), [a, b]
    for side, model in zip("ab", models):
        if model is not None:
            sql, params = sql + f" AND {side}.explainer_model = ?", params + [model]
    if sae:
        sql, params = sql + " AND a.sae = ?", params + [sae]
    rows = store.query(sql.replace("SELECT a.sae,", "SELECT a.explainer_model AS model_a, "
                                   "b.explainer_model AS model_b, a.sae,"), params).to_pylist()
    keys = [(r["sae"], r["latent"], r["scorer"]) for r in rows]
    if len(set(keys)) < len(keys):
        made_by = sorted({(r["model_a"], r["model_b"]) for r in rows})
        raise ValueError(f"{column} {a!r} and {b!r} pair some latents more than once: their rows were made by "
                         f"several explainer models ({', '.join(f'{x} / {y}' for x, y in made_by)}); name each "
                         f"side's model (autointerp compare --model-a ... --model-b ...)")
    results = []
    for scorer in sorted({r["scorer"] for r in rows}):
        pairs = [(r["a"], r["b"]) for r in rows if r["scorer"] == scorer]
        x, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        unit, diff = metric_bounds(metric), metric_bounds(metric, difference=True)
        results.append(Comparison(scorer, metric, len(pairs), mean_ci(x, bounds=unit), mean_ci(y, bounds=unit),
                                  mean_ci(x - y, bounds=diff)))
    return results


def format_comparison(column: str, a: str, b: str, results: list[Comparison]) -> str:
    def cell(value) -> str:
        mean, low, high = value
        return "n/a" if mean is None else f"{mean:.3f}" if low is None else f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    lines = [f"{column}: A = {a}, B = {b} (paired over latents scored under both; 95% bootstrap-t intervals)",
             f"  {'scorer':10} {'metric':17} {'A':24} {'B':24} {'A - B':24} latents"]
    lines += [f"  {r.scorer:10} {r.metric:17} {cell(r.a):24} {cell(r.b):24} {cell(r.difference):24} {r.n_latents}"
              for r in results]
    if not results:
        lines.append("  no latent was scored under both")
    return "\n".join(lines)


def comparable(store: ResultsStore, sae: str | None = None) -> dict[str, list[tuple[str, int]]]:
    """For each column `compare` pairs by: its values in the scores, each with the number of latents scored with
    it (own explanations), most first."""
    if not store.has_table("scores"):
        return {column: [] for column in COLUMNS}
    where, params = ("AND sae = ?", [sae]) if sae else ("", [])
    return {column: [(r["value"], r["latents"]) for r in store.query(
        f"SELECT {column} AS value, count(DISTINCT (sae, latent)) AS latents FROM scores WHERE control = 'none' "
        f"{where} GROUP BY 1 ORDER BY 2 DESC, 1", params).to_pylist()] for column in COLUMNS}


def format_comparable(values: dict[str, list[tuple[str, int]]], column: str | None = None) -> str:
    """What `autointerp compare BY A B` accepts: the columns, and each column's values."""
    lines = ["autointerp compare BY A B [--metric auc] [--sae KEY]: A and B are two values of BY, compared on the "
             "latents scored under both"]
    for name, found in values.items():
        if column and name != column:
            continue
        lines.append(f"  {name}:" + ("" if found else " (nothing scored yet)"))
        lines += [f"    {value}  ({latents} latents)" for value, latents in found]
    return "\n".join(lines)
