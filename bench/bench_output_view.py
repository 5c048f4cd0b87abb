"""The output-side explainer against the default one on real latents: what steering each latent on its explainer
windows promotes, what it costs, and whether explanations written from it score better than those written from
the unembedding view (MiniLM embedding AUC, own minus shuffled explanation, 95% bootstrap over latents).

Reads the example sets, digests and explanations of a finished run from $AUTOINTERP_HOME's results store (run
`make run` first; use a copy of the home: the LLM cache and call log are written to it). For every SAE with
explanations by the configured explainer it steers the explained latents (`explainer.steering_prompts`
windows, KL target `explainer.steering_kl_target`), explains them again with `output_view: steering`, and
embedding-scores both explainers' explanations on the same held-out windows.

    AUTOINTERP_HOME=/path/to/home-copy .venv/bin/python bench/bench_output_view.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.assets.slices import read_digests, read_example_sets, read_explained  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.explain.digest import steered_for_explainer  # noqa: E402
from autointerp_dagster.core.explain.explainers import ExplainItem, explain_latents, explainer_id  # noqa: E402
from autointerp_dagster.core.llm import build_backend, build_client  # noqa: E402
from autointerp_dagster.core.models.subject import load_subject_model  # noqa: E402
from autointerp_dagster.core.reporting.metrics import mean_ci  # noqa: E402
from autointerp_dagster.core.sampling import evenly_spaced  # noqa: E402
from autointerp_dagster.core.scorers import embedding_scores  # noqa: E402
from autointerp_dagster.core.scorers.runs import scoring_tasks  # noqa: E402
from autointerp_dagster.core.store import open_store  # noqa: E402

ALL = (0, 1 << 30)


def embedding_gain(sae: str, explained: dict[int, dict], sets, config) -> tuple[float | None, ...]:
    """Mean over latents of own minus shuffled embedding AUC, with its interval."""
    pool = {latent: row["explanation"] for latent, row in explained.items()}
    tasks = scoring_tasks(sae, explained, sets, pool, config.sampling.negatives, config.scoring.seed)
    scores = embedding_scores([t.item for t in tasks], seed=config.scoring.seed)
    own = {t.item.latent: s.metrics.auc for t, s in zip(tasks, scores) if t.control == "none"}
    shuffled = {t.item.latent: s.metrics.auc for t, s in zip(tasks, scores) if t.control != "none"}
    gains = [own[k] - shuffled[k] for k in own if k in shuffled and own[k] is not None and shuffled[k] is not None]
    return (*mean_ci(np.array(gains), seed=config.scoring.seed), len(gains))


def main() -> None:
    config = load_settings()
    store = open_store(config)
    default = config.explainer
    steering = default.model_copy(update={"output_view": "steering"})
    shown = config.explainer.examples
    saes = [r["sae"] for r in store.query("SELECT DISTINCT sae FROM explanations WHERE explainer = ? ORDER BY sae",
                                          [explainer_id(default)]).to_pylist()]
    model = load_subject_model(config.model.name, config.models_dir, config.model.device, config.model.dtype)
    client = build_client(config.llm, build_backend(config.llm, config.models_dir), store)
    print(f"explainer (unembedding view) {explainer_id(default)}, steering view {explainer_id(steering)}")
    for sae in saes:
        explained, _ = read_explained(store, sae, *ALL, explainer_id(default), config.llm.label)
        explained = {k: v for k, v in explained.items() if v.get("explanation")}
        sets, digests = read_example_sets(store, sae, *ALL), read_digests(store, sae, *ALL)
        latents = sorted(k for k in explained if k in sets and k in digests)
        started = time.perf_counter()
        steered = steered_for_explainer(config, sae, [sets[k] for k in latents], model)
        steer_seconds = time.perf_counter() - started
        items = [ExplainItem(k, evenly_spaced(sets[k].train, shown, key=lambda e: e.quantile), (),
                             replace(digests[k], steered=tuple(steered[k]))) for k in latents]
        started = time.perf_counter()
        results = explain_latents(client, items, steering)
        explain_seconds = time.perf_counter() - started
        new = {r.latent: {"explanation": r.explanation, "explanation_id": f"steering-{r.latent}"}
               for r in results if r.ok}
        print(f"\n{sae}: {len(latents)} latents; steering {steer_seconds / max(len(latents), 1):.1f} s a latent, "
              f"explaining {explain_seconds / max(len(latents), 1):.1f} s a latent")
        for k in latents:
            print(f"  latent {k}: unembedding {[t for t, _ in digests[k].promoted[:5]]}  steering "
                  f"{[t for t, _ in steered[k][:5]]}")
            print(f"    unembedding view: {explained[k]['explanation']!r}")
            print(f"    steering view:    {new.get(k, {}).get('explanation')!r}")
        for name, chosen in (("unembedding", {k: explained[k] for k in latents}), ("steering", new)):
            mean, low, high, n = embedding_gain(sae, chosen, sets, config)
            shown_ci = f"[{low:+.3f}, {high:+.3f}]" if low is not None else "[n/a]"
            print(f"  {name:12} view: embedding AUC own - shuffled {mean:+.3f} {shown_ci} over {n} latents")


if __name__ == "__main__":
    main()
