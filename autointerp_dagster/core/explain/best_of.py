"""Best-of-k explanations: k draws a latent, and the one that best tells held-out activating windows from
silent ones is kept.

The first draw is the plain explanation (at `explainer.temperature`), the others are drawn at
`best_of_temperature`. Each draw is rated as the embedding scorer rates an explanation (MiniLM cosine
similarity to each window, AUC of activating against silent) on the latent's held-out windows
(`select` and `select_random`, which neither the explainer nor any scorer sees), so the choice never sees
scored data. The held-out windows are split in two: the draws are rated on one half and the chosen one is
compared with the first draw on the other, so the reported gain is not the winner's curse of the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from autointerp_dagster.core.config import ExplainerConfig
from autointerp_dagster.core.llm import LLMClient
from autointerp_dagster.core.models.embeddings import embed_texts
from autointerp_dagster.core.reporting.metrics import roc_auc
from autointerp_dagster.core.sampling import Example

from .explainers import ExplainItem, ExplanationResult, explain_latents


@dataclass(frozen=True)
class HeldOut:
    """A latent's held-out windows: activating (`select`) and silent (`select_random`)."""

    activating: Sequence[Example]
    silent: Sequence[Example]

    def half(self, which: int) -> tuple[list[Example], list[int]]:
        """Every other window from `which` (0: the choice's half, 1: the comparison's), with labels."""
        active, silent = list(self.activating[which::2]), list(self.silent[which::2])
        return active + silent, [1] * len(active) + [0] * len(silent)


@dataclass(frozen=True)
class Draw:
    """One of a latent's k explanations: its AUC on the choice's half and on the comparison's half."""

    latent: int
    draw: int
    result: ExplanationResult
    choice_auc: float | None
    heldout_auc: float | None
    chosen: bool


def explain_best_of(client: LLMClient, items: Sequence[ExplainItem], config: ExplainerConfig,
                    held_out: dict[int, HeldOut], on_progress=None) -> tuple[list[ExplanationResult], list[Draw]]:
    """The chosen explanation per item (in order; its tokens and calls are those of all its draws, so its cost is
    the latent's whole cost), and every draw of every latent. A latent without held-out windows of both kinds
    (too few activating windows to spare any) cannot choose: it gets its first draw alone."""
    windows = [held_out.get(item.latent) for item in items]
    windows = [w if w is not None and w.activating and w.silent else None for w in windows]
    by_latent = [[r] for r in explain_latents(client, items, config, on_progress)]
    choosable = [i for i, w in enumerate(windows) if w is not None]
    hot = config.model_copy(update={"temperature": config.best_of_temperature})
    for k in range(1, config.best_of if choosable else 1):
        for i, result in zip(choosable, explain_latents(client, [items[i] for i in choosable], hot, on_progress,
                                                        sample=k)):
            by_latent[i].append(result)
    ratings = _rate(by_latent, windows)
    chosen_results, found = [], []
    for results, rated in zip(by_latent, ratings):
        ok = [k for k, r in enumerate(results) if r.ok]
        # The best rated draw; ties (and latents without held-out windows) keep the earliest, the first draw first.
        best = max(ok, key=lambda k: (rated[k][0] if rated[k][0] is not None else -1.0, -k)) if ok else 0
        chosen_results.append(replace(results[best], call_ids=[c for r in results for c in r.call_ids],
                                      prompt_tokens=sum(r.prompt_tokens for r in results),
                                      completion_tokens=sum(r.completion_tokens for r in results)))
        found += [Draw(r.latent, k, r, *rated[k], chosen=k == best) for k, r in enumerate(results)]
    return chosen_results, found


def _rate(by_latent: list[list[ExplanationResult]], held_out: list[HeldOut | None]
          ) -> list[list[tuple[float | None, float | None]]]:
    """(choice AUC, comparison AUC) of every draw of every latent: all texts embedded in one batch."""
    texts = sorted({t for results, windows in zip(by_latent, held_out) if windows is not None
                    for t in [r.explanation for r in results if r.ok]
                    + [e.text for e in [*windows.activating, *windows.silent]]})
    vectors = dict(zip(texts, embed_texts(texts)))
    rated = []
    for results, windows in zip(by_latent, held_out):
        row = []
        for r in results:
            if windows is None or not r.ok:
                row.append((None, None))
                continue
            query = vectors[r.explanation]
            row.append(tuple(_auc(query, vectors, *windows.half(which)) for which in (0, 1)))
        rated.append(row)
    return rated


def _auc(query: np.ndarray, vectors: dict[str, np.ndarray], examples: list[Example], labels: list[int]
         ) -> float | None:
    if not examples:
        return None
    return roc_auc(labels, np.array([vectors[e.text] @ query for e in examples]))
