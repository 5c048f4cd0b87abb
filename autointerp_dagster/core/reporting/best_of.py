"""The summary's best-of-k block: does choosing among k explanations beat the first draw on windows the choice
never saw?"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import numpy as np

from autointerp_dagster.core.store import ResultsStore

from .metrics import MEAN_INTERVAL, format_interval, mean_ci


def chosen_and_first(rows: Iterable[dict], key: Callable[[dict], Hashable] = lambda r: r["latent"]
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """From `explanation_draws` rows (latent, draw, chosen, heldout_auc): the chosen draws' and the first draws'
    comparison-half AUCs, paired over the latents (`key`) where both have one, and how many latents a later draw
    won."""
    rows = list(rows)
    chosen = {key(r): r for r in rows if r["chosen"]}
    first = {key(r): r["heldout_auc"] for r in rows if r["draw"] == 0}
    both = sorted(k for k, r in chosen.items() if r["heldout_auc"] is not None and first.get(k) is not None)
    return (np.array([chosen[k]["heldout_auc"] for k in both]), np.array([first[k] for k in both]),
            sum(r["draw"] > 0 for r in chosen.values()))


def best_of_comparison(store: ResultsStore, sae: str, explainer: str, label: str) -> dict | None:
    """Over the latents whose chosen and first draws both have a comparison-half AUC (`explanation_draws`):
    k, how many latents, how many a later draw won, and (mean, low, high) of the chosen, the first and their
    paired difference. None where the explainer drew once."""
    if not store.has_table("explanation_draws"):
        return None
    rows = store.query("SELECT latent, draw, chosen, heldout_auc FROM explanation_draws WHERE sae = ? AND "
                       "explainer = ? AND backend || ':' || model = ?", [sae, explainer, label]).to_pylist()
    if not rows:
        return None
    a, b, later_won = chosen_and_first(rows)
    return {"k": max(r["draw"] for r in rows) + 1, "latents": len(a), "later_won": later_won,
            "chosen": mean_ci(a, bounds=(0.0, 1.0)), "first": mean_ci(b, bounds=(0.0, 1.0)),
            "difference": mean_ci(a - b, bounds=(-1.0, 1.0))}


def best_of_lines(store: ResultsStore, sae: str, explainer: str, label: str) -> list[str]:
    found = best_of_comparison(store, sae, explainer, label)
    if found is None:
        return []
    return [f"  best-of-{found['k']}: a later draw chosen for {found['later_won']} latent(s); MiniLM AUC on held-out "
            f"windows that neither the choice, the explainer nor a scorer saw [95% {MEAN_INTERVAL}]",
            f"  {'chosen':12} {format_interval(found['chosen']):26} first draw {format_interval(found['first']):26} "
            f"chosen - first {format_interval(found['difference']):26} latents {found['latents']}"]
