"""The one query layer behind the latent pages and the exports: what an SAE's index lists and what a latent's page
shows, read from the results store as plain JSON-ready values.

An index row is one explanation (a latent may have several: explainers, models), each score beside its own
shuffled-explanation control. Score rows written before
controls existed (`control` NULL) count as the explanation's own score. Latent pages are built a chunk of latents
at a time, so an SAE with 10,000+ explained latents never holds all its examples in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb

from ..cache import ActivationCache, CacheMissingError
from ..reporting.summary import SCORER_METRICS
from ..store import ResultsStore

ACTIVATING_SETS = ("train", "test")  # the explainer's and the scorers' activating windows
NEGATIVE_SETS = ("random", "hard_negative", "hard_negative_train")
HISTOGRAM_BINS = 24
OWN = "coalesce(control, 'none') = 'none'"


def score_column(scorer: str, metric: str) -> str:
    return f"{scorer} {metric}"


SCORE_COLUMNS = [score_column(s, m) for s, m in SCORER_METRICS]


@dataclass
class SaeIndex:
    """What the SAE's index page lists, and the counts its header states."""

    sae: str
    rows: list[dict] = field(default_factory=list)
    latents: list[int] = field(default_factory=list)  # latents with at least one explanation (ok or failed)
    sampled: int = 0  # latents with examples
    skipped: int = 0  # dead or too few activating windows
    explained: int = 0  # latents with an ok explanation
    failed: int = 0  # latents whose every explanation failed
    n_latents: int | None = None  # the coder's width, from its cache record
    tokens_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)  # explaining and scoring, all latents


@dataclass
class LatentPage:
    sae: str
    latent: int
    data: dict


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _num(value) -> float | None:
    """Six significant digits: enough for any score or frequency shown, and a lighter page."""
    return None if value is None else float(f"{float(value):.6g}")


def known_saes(store: ResultsStore) -> list[str]:
    """Every SAE the store knows: cached, sampled or explained."""
    with store.connect() as con:
        tables = _tables(con) & {"activation_caches", "latent_sampling", "explanations"}
        if not tables:
            return []
        union = " UNION ".join(f"SELECT DISTINCT sae FROM {t}" for t in sorted(tables))
        return sorted(r[0] for r in con.execute(union).fetchall())


def gather_index(store: ResultsStore, sae: str) -> SaeIndex:
    """Every explanation of the SAE with its scores (own and shuffled control) and the latent's statistics."""
    index = SaeIndex(sae)
    with store.connect() as con:
        tables = _tables(con)
        if "activation_caches" in tables:
            found = con.execute("SELECT n_latents FROM activation_caches WHERE sae = ?", [sae]).fetchall()
            index.n_latents = found[0][0] if found else None
        if "latent_sampling" in tables:
            for status, n in con.execute("SELECT status, count(*) FROM latent_sampling WHERE sae = ? GROUP BY 1",
                                         [sae]).fetchall():
                if status == "ok":
                    index.sampled = n
                else:
                    index.skipped += n
        if "explanations" not in tables:
            return index
        stats = "latent_stats" in tables
        explanations = _dicts(con, (
            "SELECT e.latent, e.explanation_id, e.explainer, e.backend || ':' || e.model AS model, e.status, "
            "e.explanation, e.error" + (", s.frequency, s.n_activations, s.max_activation " if stats else " ")
            + "FROM explanations e " + ("LEFT JOIN latent_stats s ON s.sae = e.sae AND s.latent = e.latent " if stats
                                        else "")
            + "WHERE e.sae = ? ORDER BY e.latent, e.created_at DESC"), [sae])
        scores = []
        if "scores" in tables:
            scores = _dicts(con, (
                "SELECT explanation_id, coalesce(judge || ' ' || scorer_config, 'unrecorded judge') AS judge, scorer, "
                f"{OWN} AS own, {', '.join(m for _, m in SCORER_METRICS)} "
                "FROM scores WHERE sae = ? ORDER BY created_at NULLS FIRST"), [sae])
    # One row per explanation; a scorer judged by several judges or configurations shows its newest score (the
    # latent's page shows them all), and the row names every judge it draws on.
    cells: dict[str, dict[str, list]] = {}
    judges: dict[str, list[str]] = {}
    for s in scores:
        row = cells.setdefault(s["explanation_id"], {})
        if s["judge"] not in judges.setdefault(s["explanation_id"], []):
            judges[s["explanation_id"]].append(s["judge"])
        for scorer, metric in SCORER_METRICS:
            if s["scorer"] == scorer:
                row.setdefault(score_column(scorer, metric), [None, None])[0 if s["own"] else 1] = _num(s[metric])
    ok_latents = set()
    for e in explanations:
        if e["status"] == "ok":
            ok_latents.add(e["latent"])
        found = cells.get(e["explanation_id"], {})
        index.rows.append({
            "latent": e["latent"], "explanation": e["explanation"] or "", "status": e["status"], "error": e["error"],
            "explainer": e["explainer"], "model": e["model"], "judge": "; ".join(judges.get(e["explanation_id"], [])),
            "frequency": _num(e.get("frequency")), "n_activations": e.get("n_activations"),
            "max_activation": _num(e.get("max_activation")),
            "scores": {c: found.get(c, [None, None]) for c in SCORE_COLUMNS},
        })
    index.latents = sorted({e["latent"] for e in explanations})
    with store.connect() as con:
        for tokens in latent_tokens(con, tables, sae, index.latents).values():
            for label, (p, c) in tokens.items():
                before = index.tokens_by_model.get(label, (0, 0))
                index.tokens_by_model[label] = (before[0] + p, before[1] + c)
    index.explained = len(ok_latents)
    index.failed = len(set(index.latents) - ok_latents)
    return index


def iter_latent_pages(store: ResultsStore, sae: str, latents: list[int], chunk: int = 256) -> Iterator[LatentPage]:
    """One page's data per latent: explanations with scores and intervals, examples with the judges' verdicts,
    an activation histogram, digest tokens and matched latents. Reads `chunk` latents at a time."""
    with store.connect() as con:
        tables = _tables(con)
        cache_path = None
        if "activation_caches" in tables:
            found = con.execute("SELECT cache_path FROM activation_caches WHERE sae = ?", [sae]).fetchall()
            cache_path = found[0][0] if found else None
        explained = set()
        if "explanations" in tables:
            explained = {(r[0], r[1]) for r in con.execute("SELECT DISTINCT sae, latent FROM explanations").fetchall()}
    for start in range(0, len(latents), chunk):
        part = sorted(latents[start:start + chunk])
        with store.connect() as con:
            yield from _chunk_pages(con, tables, sae, part, cache_path, explained)


def _by_latent(rows: list[dict]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row.pop("latent"), []).append(row)
    return grouped


def _chunk_pages(con, tables: set[str], sae: str, part: list[int], cache_path: str | None,
                 explained: set) -> Iterator[LatentPage]:
    where = "sae = ? AND list_contains(?, latent)"
    params = [sae, part]

    def rows(table: str, sql: str) -> dict[int, list[dict]]:
        return _by_latent(_dicts(con, sql, params)) if table in tables else {}

    stats = rows("latent_stats", f"SELECT latent, n_activations, frequency, max_activation, mean_activation "
                                 f"FROM latent_stats WHERE {where}")
    sampling = rows("latent_sampling", f"SELECT latent, status, reason, n_activating_windows "
                                       f"FROM latent_sampling WHERE {where}")
    explanations = rows("explanations", f"SELECT latent, explanation_id, explainer, backend || ':' || model AS model, "
                                        f"status, explanation, error, raw_answer, created_at::VARCHAR AS created_at "
                                        f"FROM explanations WHERE {where} ORDER BY created_at DESC")
    scores = rows("scores", f"SELECT latent, explanation_id, coalesce(judge || ' ' || scorer_config, "
                            f"'unrecorded judge') AS judge, scorer, {OWN} AS own, control_latent, status, error, "
                            f"balanced_accuracy, ci_low, ci_high, auc, auc_ci_low, auc_ci_high, n_examples, n_failed "
                            f"FROM scores WHERE {where} ORDER BY scorer")
    intruder = rows("scores", f"SELECT latent, judge || ' ' || scorer_config AS judge, control, status, error, "
                              f"accuracy, ci_low, ci_high, n_examples, n_failed FROM scores WHERE {where} "
                              f"AND scorer = 'intruder' ORDER BY judge, control DESC")
    draws = rows("explanation_draws", f"SELECT latent, explainer, backend || ':' || model AS model, draw, status, "
                                      f"explanation, error, choice_auc, heldout_auc, chosen FROM explanation_draws "
                                      f"WHERE {where} ORDER BY explainer, model, draw")
    examples = rows("examples", f"SELECT latent, set, idx, row, start, quantile, tokens, activations "
                                f"FROM examples WHERE {where} ORDER BY quantile DESC, set, idx")
    verdicts = rows("judgments", f"SELECT latent, explanation_id, scorer, example_set, example_idx, label, prediction, "
                                 f"probability, error FROM judgments WHERE {where} AND {OWN}")
    digest = rows("latent_digest", f"SELECT latent, kind, token, value FROM latent_digest WHERE {where} "
                                   f"ORDER BY kind, rank")
    matches = _matches(con, tables, sae, part)
    tokens = latent_tokens(con, tables, sae, part)
    histograms = {**_example_histograms(examples), **_histograms(con, cache_path, part)}  # the cache's if it has them
    for latent in part:
        page_explanations = []
        for e in explanations.get(latent, []):
            mine = [s for s in scores.get(latent, []) if s["explanation_id"] == e["explanation_id"]]
            page_explanations.append({**e, "scores": [_score_cells(s) for s in mine]})
        page_examples = [{**x, "activations": [round(a, 4) if a else 0.0 for a in x["activations"]]}
                         for x in examples.get(latent, [])]
        yield LatentPage(sae, latent, {
            "sae": sae, "latent": latent, "tokens": tokens.get(latent, {}),
            "stats": _clean((stats.get(latent) or [None])[0]),
            "sampling": (sampling.get(latent) or [None])[0],
            "explanations": page_explanations,
            "intruder": [_clean(r) for r in intruder.get(latent, [])],
            "draws": [_clean(r) for r in draws.get(latent, [])],
            "examples": page_examples,
            "verdicts": [_clean(v) for v in verdicts.get(latent, [])],
            "histogram": histograms.get(latent),
            "digest": {kind: [[d["token"], _num(d["value"])] for d in digest.get(latent, []) if d["kind"] == kind]
                       for kind in ("promoted", "top_activating")} if "latent_digest" in tables else None,
            "matches": [{**m, "has_page": (m["sae"], m["latent"]) in explained} for m in matches.get(latent, [])]
            if "latent_matches" in tables else None,
        })


def latent_tokens(con, tables: set[str], sae: str, latents: list[int]) -> dict[int, dict[str, tuple[int, int]]]:
    """LLM tokens (prompt, completion) each latent's explanations and scores spent, by `backend:model`."""
    parts = []
    if "explanations" in tables:
        parts.append("SELECT latent, backend || ':' || model AS label, prompt_tokens AS p, completion_tokens AS c "
                     "FROM explanations WHERE sae = ? AND list_contains(?, latent)")
    if "scores" in tables:
        parts.append("SELECT latent, judge AS label, prompt_tokens AS p, completion_tokens AS c "
                     "FROM scores WHERE sae = ? AND list_contains(?, latent)")
    found: dict[int, dict[str, tuple[int, int]]] = {}
    if not parts:
        return found
    sql = (f"SELECT latent, label, sum(coalesce(p, 0)), sum(coalesce(c, 0)) FROM ({' UNION ALL '.join(parts)}) "
           "WHERE label IS NOT NULL GROUP BY ALL")
    for latent, label, p, c in con.execute(sql, [sae, latents] * len(parts)).fetchall():
        if p or c:
            found.setdefault(latent, {})[label] = (int(p), int(c))
    return found


def _clean(row: dict | None) -> dict | None:
    return None if row is None else {k: _num(v) if isinstance(v, float) else v for k, v in row.items()}


def _score_cells(s: dict) -> dict:
    return _clean({k: v for k, v in s.items() if k != "explanation_id"})


def _matches(con, tables: set[str], sae: str, part: list[int]) -> dict[int, list[dict]]:
    """Matched latents in other SAEs, from either side of each pair (table `latent_matches`, issue 11)."""
    if "latent_matches" not in tables:
        return {}
    found = _dicts(con, (
        "SELECT latent_a AS latent, sae_b AS sae, latent_b AS other, method, decoder_cosine, activation_correlation, "
        "explanation_similarity FROM latent_matches WHERE sae_a = ? AND list_contains(?, latent_a) UNION ALL "
        "SELECT latent_b, sae_a, latent_a, method, decoder_cosine, activation_correlation, explanation_similarity "
        "FROM latent_matches WHERE sae_b = ? AND list_contains(?, latent_b)"), [sae, part, sae, part])
    grouped: dict[int, list[dict]] = {}
    for m in found:
        latent = m.pop("latent")
        m["latent"] = m.pop("other")
        grouped.setdefault(latent, []).append(_clean(m))
    return grouped


def _histograms(con, cache_path: str | None, part: list[int]) -> dict[int, dict]:
    """Every activation of each latent in the cache, binned from 0 to the latent's maximum (all its tokens,
    not only the sampled windows)."""
    if not cache_path or not part:
        return {}
    try:
        files = [str(f) for f in ActivationCache(cache_path).shard_files(part[0], part[-1] + 1)]
    except CacheMissingError:
        return {}
    if not files:
        return {}
    found = con.execute(
        "WITH r AS (SELECT latent, CAST(activation AS DOUBLE) AS a FROM read_parquet(?) "
        "WHERE list_contains(?, latent) AND activation > 0), m AS (SELECT latent, max(a) AS top FROM r GROUP BY 1) "
        "SELECT r.latent, any_value(m.top), list(least(CAST(floor(r.a / m.top * ?) AS INTEGER), ? - 1)) "
        "FROM r JOIN m USING (latent) GROUP BY 1", [files, part, HISTOGRAM_BINS, HISTOGRAM_BINS]).fetchall()
    return {latent: _binned(top, bins, "activation cache (every token)") for latent, top, bins in found}


def _example_histograms(examples: dict[int, list[dict]]) -> dict[int, dict]:
    """Fallback without a cache: the non-zero activations of the latent's sampled windows."""
    out = {}
    for latent, windows in examples.items():
        values = [a for w in windows if w["set"] in ACTIVATING_SETS for a in w["activations"] if a and a > 0]
        if values:
            top = max(values)
            out[latent] = _binned(top, [min(int(v / top * HISTOGRAM_BINS), HISTOGRAM_BINS - 1) for v in values],
                                  "sampled example windows only (no activation cache)")
    return out


def _binned(top: float, bins: list[int], source: str) -> dict:
    counts = [0] * HISTOGRAM_BINS
    for b in bins:
        counts[b] += 1
    return {"max": _num(top), "counts": counts, "source": source}
