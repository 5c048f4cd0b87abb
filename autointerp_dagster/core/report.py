"""Per-SAE summaries of the interpretation results, read from the results store.

Averages are over latents (each latent's score is computed on its own held-out examples),
with bootstrap intervals over latents, unlike delphi's pooled-over-all-examples numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .metrics import mean_ci
from .store import ResultsStore

SCORER_METRICS = (("detection", "balanced_accuracy"), ("fuzzing", "balanced_accuracy"),
                  ("detection", "auc"), ("fuzzing", "auc"), ("embedding", "auc"))
OFFLINE_JUDGE_NOTE = (
    "The offline judge is a small model (Qwen2.5-Coder 1.5B, 4-bit GGUF): its explanations and judgments are a "
    "demonstration of the pipeline, and its scores are not comparable with those of a 70B judge such as the "
    "paper's Llama 3.1 70B. Point AUTOINTERP_LLM_* at a real server for research numbers (see the README)."
)


@dataclass
class ScorerSummary:
    scorer: str
    metric: str
    n_latents: int
    mean: float | None
    low: float | None
    high: float | None
    values: list[float] = field(default_factory=list)


@dataclass
class SaeReport:
    sae: str
    latents_with_examples: int = 0
    latents_skipped: int = 0
    latents_explained: int = 0
    explanations_failed: int = 0
    scorers: list[ScorerSummary] = field(default_factory=list)
    llm_calls: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def sae_report(store: ResultsStore, sae: str, explainer: str) -> SaeReport:
    report = SaeReport(sae)
    with store.connect() as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}

        def rows(sql: str, params: list) -> list[tuple]:
            return con.execute(sql, params).fetchall()

        if "latent_sampling" in tables:
            for status, n in rows("SELECT status, count(*) FROM latent_sampling WHERE sae = ? GROUP BY status", [sae]):
                if status == "ok":
                    report.latents_with_examples = n
                else:
                    report.latents_skipped += n
        call_sources = []
        if "explanations" in tables:
            for status, n, p, c in rows("SELECT status, count(*), sum(prompt_tokens), sum(completion_tokens) "
                                        "FROM explanations WHERE sae = ? AND explainer = ? GROUP BY status",
                                        [sae, explainer]):
                if status == "ok":
                    report.latents_explained = n
                else:
                    report.explanations_failed += n
                report.prompt_tokens += int(p or 0)
                report.completion_tokens += int(c or 0)
            call_sources.append("SELECT unnest(call_ids) FROM explanations WHERE sae = ? AND explainer = ?")
        if "scores" in tables:
            for scorer, metric in SCORER_METRICS:
                values = [v for (v,) in rows(f"SELECT {metric} FROM scores WHERE sae = ? AND explainer = ? "
                                             f"AND scorer = ? AND {metric} IS NOT NULL ORDER BY latent",
                                             [sae, explainer, scorer])]
                mean, low, high = mean_ci(values)
                report.scorers.append(ScorerSummary(scorer, metric, len(values), mean, low, high, values))
            p, c = rows("SELECT sum(prompt_tokens), sum(completion_tokens) FROM scores "
                        "WHERE sae = ? AND explainer = ?", [sae, explainer])[0]
            report.prompt_tokens += int(p or 0)
            report.completion_tokens += int(c or 0)
            call_sources.append("SELECT unnest(call_ids) FROM scores WHERE sae = ? AND explainer = ?")
        if "llm_calls" in tables and call_sources:
            union = " UNION ALL ".join(call_sources)
            for status, n in rows(f"SELECT status, count(*) FROM llm_calls WHERE call_id IN ({union}) GROUP BY status",
                                  [sae, explainer] * len(call_sources)):
                report.llm_calls[status] = n
    return report


def _interval(summary: ScorerSummary) -> str:
    if summary.mean is None:
        return "n/a"
    if summary.low is None:
        return f"{summary.mean:.3f}"
    return f"{summary.mean:.3f} [{summary.low:.3f}, {summary.high:.3f}]"


def format_report(report: SaeReport) -> str:
    """Plain-text block for one SAE: counts, per-scorer means with 95% intervals over latents, LLM use."""
    lines = [
        f"{report.sae}",
        f"  latents: {report.latents_explained} explained, {report.explanations_failed} explanation failures, "
        f"{report.latents_skipped} skipped (dead or too few activating windows)",
    ]
    for summary in report.scorers:
        lines.append(f"  {summary.scorer:9} {summary.metric:17} {_interval(summary):26} over {summary.n_latents} latents")
    calls = ", ".join(f"{n} {status}" for status, n in sorted(report.llm_calls.items())) or "none"
    lines.append(f"  LLM calls: {calls}; tokens: {report.prompt_tokens:,} prompt, {report.completion_tokens:,} completion")
    return "\n".join(lines)
