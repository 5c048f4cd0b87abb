"""Coders side by side: each scorer's mean own score, shuffled-explanation control and their difference, per
coder, so SAE latents and MLP neurons (raw or top-k) read against each other (the paper's finding: SAE latents
are far more interpretable than neurons, even sparsified ones).

Intruder detection rates latents without an explanation: its row (control: windows of mixed latents) compares
coders with no explainer in between.

Different coders have different latents, so nothing is paired across coders: each row is its coder's own
comparison with its own control, with 95% bootstrap-t intervals over that coder's latents.
"""

from __future__ import annotations

from ..coders.formats.random_twin import twin_key
from ..store import ResultsStore
from .summary import CoderSummary, coder_summary, format_interval, intruder_summaries, twin_lines


def coder_summaries(store: ResultsStore, keys: list[str], explainer: str, explainer_model: str) -> list[CoderSummary]:
    """Each coder's summary for one explainer, with its intruder detection (which needs no explanation, so it
    compares SAE latents and neurons without an explainer in between)."""
    summaries = [coder_summary(store, key, explainer, explainer_model) for key in keys]
    for summary in summaries:
        summary.scorers += intruder_summaries(store, summary.sae)
    return summaries


def format_coder_comparison(summaries: list[CoderSummary]) -> str:
    """One block per scorer and metric, one line per coder."""
    width = max([len(r.sae) for r in summaries] + [5])
    lines = [f"  {'coder':{width}} {'explained':>9}  {'own explanation':26} {'shuffled (control)':26} "
             f"{'own - shuffled':26} latents"]
    blocks: dict[str, list[str]] = {}
    for summary in summaries:
        for s in summary.scorers:
            label = f"{s.scorer} {s.metric} [{s.judge}]"
            if s.control != "shuffled":  # e.g. intervention's random latent: its own block, named, never unlabelled
                label += f" (control: {s.control.replace('_', ' ')})"
            blocks.setdefault(label, []).append(
                f"  {summary.sae:{width}} {summary.latents_explained:>9}  {format_interval(s.own):26} "
                f"{format_interval(s.shuffled):26} {format_interval(s.difference):26} {s.n_latents}")
    for label, rows in blocks.items():
        lines += [label, *rows]
    by_key = {r.sae: r for r in summaries}
    for summary in summaries:  # a coder beside its random twin, when both were scored
        twin = by_key.get(twin_key(summary.sae) or "")
        if twin is not None:
            lines += [line[2:] if i == 0 else line for i, line in enumerate(twin_lines(summary, twin))]
    missing = [r.sae for r in summaries if not r.scorers]
    if missing:
        lines.append(f"  not scored yet: {', '.join(missing)}")
    return "\n".join(lines)
