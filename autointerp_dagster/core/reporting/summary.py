"""Per-SAE summaries of the interpretation results, read from the results store.

Every score is shown beside its control: the same latents' examples judged against a shuffled explanation
(another latent's), and the paired difference own - shuffled with a bootstrap-t interval over latents. Averages
are over latents (each latent's score is computed on its own held-out examples), unlike delphi's
pooled-over-all-examples numbers. Only latents whose own and shuffled scores both exist enter a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import ttest_ind

from ..coders.formats.random_twin import twin_key
from ..config import Price
from ..store import ResultsStore
from .best_of import best_of_lines
from .compare import Comparison, compare, format_comparison
from .cost import format_cost, llm_cost
from .metrics import MEAN_INTERVAL, Interval, format_interval, mean_ci, metric_bounds

SCORER_METRICS = (("detection", "balanced_accuracy"), ("fuzzing", "balanced_accuracy"),
                  ("detection", "auc"), ("fuzzing", "auc"), ("embedding", "auc"), ("surprisal", "auc"),
                  ("intervention", "log_prob_gain_per_token"), ("intervention", "log_prob_gain"),
                  ("intervention", "auc"), ("simulation", "correlation"))
# Every scorer is compared with the shuffled explanation; intervention also with a random latent steered.
SCORER_CONTROLS = {"intervention": ("shuffled", "random_latent")}
OFFLINE_JUDGE_NOTE = (
    "The offline judge is a small model (Qwen2.5-Coder 1.5B, 4-bit GGUF): its explanations and judgments are a "
    "demonstration of the pipeline, and its scores are not comparable with those of a 70B judge such as the "
    "paper's Llama 3.1 70B. Set the `llm` settings to a real server for research numbers (see the README)."
)


@dataclass
class ScorerSummary:
    """One scorer's metric over the latents that have both an own and a shuffled score."""

    scorer: str
    metric: str
    judge: str  # the judge and the scorer configuration, "<judge> <scorer_config>"
    n_latents: int
    own: Interval
    shuffled: Interval
    difference: Interval
    own_values: list[float] = field(default_factory=list)
    failed: int = 0  # latents whose own score failed (mostly unparseable) or compared one class only
    control: str = "shuffled"  # what `shuffled` holds: the shuffled explanation, or a random latent steered


@dataclass
class CoderSummary:
    sae: str
    explainer: str
    explainer_model: str
    latents_with_examples: int = 0
    latents_skipped: int = 0
    latents_explained: int = 0
    explanations_failed: int = 0
    scorers: list[ScorerSummary] = field(default_factory=list)
    recall_by_quantile: dict[str, list[tuple[int, float | None, float | None]]] = field(default_factory=dict)
    llm_calls: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)  # `backend:model` -> tokens


def coder_summary(store: ResultsStore, sae: str, explainer: str, explainer_model: str) -> CoderSummary:
    """The SAE's results made by one explainer (config id) and explainer model (`backend:model`)."""
    report = CoderSummary(sae, explainer, explainer_model)
    backend, _, model = explainer_model.partition(":")
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
        mine = "sae = ? AND explainer = ? AND backend = ? AND model = ?"
        mine_params = [sae, explainer, backend, model]
        call_sources = []
        if "explanations" in tables:
            for status, n, p, c in rows("SELECT status, count(*), sum(prompt_tokens), sum(completion_tokens) "
                                        f"FROM explanations WHERE {mine} GROUP BY status", mine_params):
                if status == "ok":
                    report.latents_explained = n
                else:
                    report.explanations_failed += n
                _spend(report, explainer_model, p, c)
            call_sources.append((f"SELECT unnest(call_ids) FROM explanations WHERE {mine}", mine_params))
        scored = "sae = ? AND explainer = ? AND explainer_model = ?"
        scored_params = [sae, explainer, explainer_model]
        if "scores" in tables:
            report.scorers = _scorer_summaries(rows, scored, scored_params)
            for judge, p, c in rows(f"SELECT judge, sum(prompt_tokens), sum(completion_tokens) FROM scores "
                                    f"WHERE {scored} GROUP BY judge", scored_params):
                _spend(report, judge, p, c)
            call_sources.append((f"SELECT unnest(call_ids) FROM scores WHERE {scored}", scored_params))
        if {"judgments", "examples", "scores"} <= tables:
            report.recall_by_quantile = _recall_by_quantile(rows, sae, explainer, explainer_model)
        if "llm_calls" in tables and call_sources:
            union = " UNION ALL ".join(sql for sql, _ in call_sources)
            params = [p for _, ps in call_sources for p in ps]
            for status, n in rows(f"SELECT status, count(*) FROM llm_calls WHERE call_id IN ({union}) GROUP BY status",
                                  params):
                report.llm_calls[status] = n
    return report


def _spend(report: CoderSummary, label: str, prompt: int | None, completion: int | None) -> None:
    """Adds tokens spent by the model `label` (`backend:model`; a judge without tokens, e.g. MiniLM, adds none)."""
    prompt, completion = int(prompt or 0), int(completion or 0)
    if prompt or completion:
        before = report.tokens_by_model.get(label, (0, 0))
        report.tokens_by_model[label] = (before[0] + prompt, before[1] + completion)
    report.prompt_tokens += prompt
    report.completion_tokens += completion


def _scorer_summaries(rows, scored: str, params: list) -> list[ScorerSummary]:
    summaries = []
    for scorer, metric in SCORER_METRICS:
        # One comparison per judge and scorer configuration: scores of different judges never mix in a mean.
        found = rows(f"SELECT judge || ' ' || scorer_config, latent, control, {metric}, status FROM scores "
                     f"WHERE {scored} AND scorer = ? ORDER BY 1, latent", [*params, scorer])
        for judge in sorted({r[0] for r in found}):
            own = {r[1]: r[3] for r in found if r[0] == judge and r[2] == "none" and r[3] is not None}
            failed = sum(1 for r in found if r[0] == judge and r[2] == "none" and r[3] is None)
            for control in SCORER_CONTROLS.get(scorer, ("shuffled",)):
                other = {r[1]: r[3] for r in found if r[0] == judge and r[2] == control and r[3] is not None}
                paired = sorted(set(own) & set(other))
                a = np.array([own[k] for k in paired])
                b = np.array([other[k] for k in paired])
                unit, diff = metric_bounds(metric), metric_bounds(metric, difference=True)
                summaries.append(ScorerSummary(scorer, metric, judge, len(paired), mean_ci(a, bounds=unit),
                                               mean_ci(b, bounds=unit), mean_ci(a - b, bounds=diff),
                                               [own[k] for k in paired], failed, control))
    return summaries


def _recall_by_quantile(rows, sae: str, explainer: str, explainer_model: str) -> dict:
    """Detection and fuzzing recall of activating examples by activation quantile, own vs shuffled: the paper's
    per-decile plot (strong activations should be easier to recognise than weak ones)."""
    found = rows(
        "SELECT j.scorer, j.judge || ' ' || j.scorer_config, x.quantile, "
        "avg(j.prediction) FILTER (WHERE j.control = 'none'), avg(j.prediction) FILTER (WHERE j.control = 'shuffled') "
        "FROM judgments j JOIN examples x ON x.sae = j.sae AND x.latent = j.latent AND x.set = j.example_set "
        "AND x.idx = j.example_idx "
        "WHERE j.sae = ? AND j.label = 1 AND j.prediction IS NOT NULL AND j.scorer IN ('detection', 'fuzzing') "
        "AND j.explanation_id IN (SELECT explanation_id FROM scores WHERE sae = ? AND explainer = ? "
        "AND explainer_model = ?) GROUP BY ALL ORDER BY 1, 2, 3", [sae, sae, explainer, explainer_model])
    several = len({r[1] for r in found}) > 1  # name the judge only where judges or configs differ
    table: dict[str, list] = {}
    for scorer, judge, quantile, own, shuffled in found:
        table.setdefault(f"{scorer} ({judge})" if several else scorer, []).append((int(quantile), own, shuffled))
    return table


def format_coder_summary(report: CoderSummary, prices: Mapping[str, Price] | None = None) -> str:
    """Plain-text block for one SAE: counts, each score beside its shuffled control and their paired difference
    (95% bootstrap-t intervals over latents), recall by activation quantile, LLM use."""
    lines = [
        f"{report.sae}  (explainer {report.explainer}, {report.explainer_model})",
        f"  latents: {report.latents_explained} explained, {report.explanations_failed} explanation failures, "
        f"{report.latents_skipped} skipped (dead or too few activating windows)",
        f"  mean over latents [95% {MEAN_INTERVAL} interval]",
        f"  {'scorer':12} {'metric':23} {'own explanation':26} {'shuffled (control)':26} {'own - shuffled':26} latents",
    ]
    several = len({s.judge for s in report.scorers}) > 1  # name the judge only where judges or configs differ
    for s in report.scorers:
        failed = f" ({s.failed} failed)" if s.failed else ""
        failed += f" [{s.judge}]" if several else ""
        failed += " (control: a random latent steered)" if s.control != "shuffled" else ""
        lines.append(f"  {s.scorer:12} {s.metric:23} {format_interval(s.own):26} {format_interval(s.shuffled):26} "
                     f"{format_interval(s.difference):26} {s.n_latents}{failed}")
    for scorer, by_quantile in report.recall_by_quantile.items():
        cells = " ".join(f"q{q}:{_fraction(own)}/{_fraction(shuffled)}" for q, own, shuffled in by_quantile)
        lines.append(f"  {scorer} recall by activation quantile (own/shuffled): {cells}")
    calls = ", ".join(f"{n} {status}" for status, n in sorted(report.llm_calls.items())) or "none"
    lines.append(f"  LLM calls: {calls}; "
                 f"tokens: {report.prompt_tokens:,} prompt, {report.completion_tokens:,} completion")
    if prices is not None:
        lines.append("  " + format_cost(llm_cost(report.tokens_by_model, prices), report.latents_explained))
    return "\n".join(lines)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def baseline_comparison(store: ResultsStore, sae: str, explainer: tuple[str, str],
                        baseline: tuple[str, str]) -> list[Comparison]:
    """The LLM explainer's own scores against the top-tokens baseline's, paired over latents both explained (same
    judge and scorer configuration): does the LLM say more than a frequency count? Each side is (explainer id,
    explainer model), so another LLM run under the same explainer settings is never paired in."""
    models = (explainer[1], baseline[1])
    return [c for metric in ("auc", "balanced_accuracy")
            for c in compare(store, "explainer", explainer[0], baseline[0], metric, sae, models)]


def format_summary(store: ResultsStore, sae: str, explainers: list[tuple[str, str]],
                   prices: Mapping[str, Price] | None = None) -> tuple[str, CoderSummary]:
    """The text a researcher reads for one SAE: a report per explainer ((explainer id, `backend:model`), the LLM's
    first), then the LLM against the baseline, paired; with `prices`, what each cost in money. Returns the text
    and the first explainer's report."""
    reports = [coder_summary(store, sae, explainer, label) for explainer, label in explainers]
    blocks = [format_coder_summary(r, prices) for r in reports]
    blocks += best_of_lines(store, sae, *explainers[0])
    if len(explainers) > 1:
        (llm, llm_label), (baseline, label) = explainers[:2]
        table = format_comparison("explainer", f"{llm} ({llm_label})", f"{baseline} ({label}, the no-LLM baseline)",
                                  baseline_comparison(store, sae, explainers[0], explainers[1]))
        blocks.append("  " + table.replace("\n", "\n  "))
    blocks += intruder_lines(store, sae)
    if (twin := twin_key(sae)) is not None:
        twin_report = coder_summary(store, twin, *explainers[0])
        twin_report.scorers += intruder_summaries(store, twin)
        first = reports[0]
        first_with_intruder = CoderSummary(sae, first.explainer, first.explainer_model,
                                           scorers=first.scorers + intruder_summaries(store, sae))
        blocks += twin_lines(first_with_intruder, twin_report)
    return "\n".join(blocks), reports[0]


def trained_minus_random(trained: CoderSummary,
                         twin: CoderSummary) -> list[tuple[ScorerSummary, ScorerSummary, Interval]]:
    """Per scorer, metric and judge both coders were scored by: the trained coder's mean own score minus its
    random twin's, with a Welch t interval (the latents differ, so nothing is paired)."""
    theirs = {(s.scorer, s.metric, s.judge, s.control): s for s in twin.scorers}
    found = []
    for s in trained.scorers:
        other = theirs.get((s.scorer, s.metric, s.judge, s.control))
        if other is None or len(s.own_values) < 2 or len(other.own_values) < 2:
            continue
        a, b = np.asarray(s.own_values, float), np.asarray(other.own_values, float)
        interval = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        low, high = float(interval.low), float(interval.high)
        if (bounds := metric_bounds(s.metric, difference=True)) is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        found.append((s, other, (float(a.mean() - b.mean()), low, high)))
    return found


def twin_lines(trained: CoderSummary, twin: CoderSummary) -> list[str]:
    """The summary's block: trained - random twin per scorer (own scores), when the twin was scored."""
    rows = trained_minus_random(trained, twin)
    if not rows:
        return []
    lines = [f"  trained - random twin ({twin.sae}; the same shape with random weights): mean own score over each "
             f"coder's latents, Welch 95% interval"]
    lines += [f"  {s.scorer:12} {s.metric:23} {format_interval(diff):26} latents {len(s.own_values)} vs "
              f"{len(other.own_values)}" for s, other, diff in rows]
    return lines


def intruder_summaries(store: ResultsStore, sae: str) -> list[ScorerSummary]:
    """Intruder detection (no explanation), per judge and configuration: the mean accuracy over latents on their
    own tasks beside the control's (windows of as many latents: chance plus the judge's bias), paired."""
    if not store.has_table("scores"):
        return []
    found = store.query("SELECT judge || ' ' || scorer_config AS judge, latent, control, accuracy FROM scores "
                        "WHERE sae = ? AND scorer = 'intruder' AND status = 'ok'", [sae]).to_pylist()
    summaries = []
    for judge in sorted({r["judge"] for r in found}):
        own = {r["latent"]: r["accuracy"] for r in found if r["judge"] == judge and r["control"] == "none"}
        mixed = {r["latent"]: r["accuracy"] for r in found if r["judge"] == judge and r["control"] == "mixed"}
        paired = sorted(set(own) & set(mixed))
        a, b = np.array([own[k] for k in paired]), np.array([mixed[k] for k in paired])
        summaries.append(ScorerSummary("intruder", "accuracy", judge, len(paired), mean_ci(a, bounds=(0.0, 1.0)),
                                       mean_ci(b, bounds=(0.0, 1.0)), mean_ci(a - b, bounds=(-1.0, 1.0)),
                                       list(a), control="mixed"))
    return summaries


def intruder_lines(store: ResultsStore, sae: str) -> list[str]:
    """The summary's intruder block: each configuration's row, with chance (its id names the window count)."""
    lines = []
    for s in intruder_summaries(store, sae):
        windows = s.judge.rsplit(" ", 1)[-1].split("-")[1].removesuffix("w")  # intruder-<windows>w-<hash>
        chance = f", chance {1 / int(windows):.3f}" if windows.isdigit() else ""
        lines += [f"  intruder detection, no explanation [{s.judge}]: accuracy on a latent's windows with one of "
                  f"another latent; control: windows of {windows} different latents{chance}",
                  f"  {s.scorer:12} {s.metric:23} {format_interval(s.own):26} {format_interval(s.shuffled):26} "
                  f"{format_interval(s.difference):26} {s.n_latents}"]
    return lines


def mean_by_control(rows: Sequence[dict], metric: str, **match) -> dict[str, float]:
    """The mean of `metric` over the score rows that match `match` (column -> value), per control ("own" for the
    latent's own explanation, else the control's name), rounded to 4 places; controls without a value are left
    out. What the scoring assets report as metadata, beside the summary's intervals."""
    values: dict[str, list[float]] = {}
    for row in rows:
        if row.get(metric) is not None and all(row.get(k) == v for k, v in match.items()):
            values.setdefault("own" if row["control"] == "none" else row["control"], []).append(row[metric])
    return {control: round(sum(v) / len(v), 4) for control, v in values.items()}
