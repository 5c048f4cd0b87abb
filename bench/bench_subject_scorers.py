"""Surprisal and intervention on the embedded default's existing explanations (after `make run`): own vs shuffled
(and, for intervention, vs a random latent steered) means with 95% bootstrap intervals over latents, and the
time per latent on this machine. Model quality, so kept out of tests/.

    AUTOINTERP_HOME=.autointerp .venv/bin/python bench/bench_subject_scorers.py [--latents-per-sae 8]

Reads the results DuckDB read-only and writes nothing. Explanations: the newest explainer of each SAE.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.coders import load_coder, lookup  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.models.subject import load_subject_model  # noqa: E402
from autointerp_dagster.core.reporting.metrics import mean_ci  # noqa: E402
from autointerp_dagster.core.sampling import rows_to_latent_examples  # noqa: E402
from autointerp_dagster.core.scorers.runs import OWN, scoring_tasks  # noqa: E402
from autointerp_dagster.core.scorers.subject_runs import score_with_language_models  # noqa: E402
from autointerp_dagster.core.store import Store, open_store  # noqa: E402


def newest_explanations(store: Store, sae: str) -> tuple[dict, dict]:
    rows = store.query("SELECT * FROM explanations WHERE sae = ? AND status = 'ok' AND explainer = (SELECT explainer "
                       "FROM explanations WHERE sae = ? ORDER BY created_at DESC LIMIT 1)", [sae, sae]).to_pylist()
    return {r["latent"]: r for r in rows}, {r["latent"]: r["explanation"] for r in rows}


def interval(values) -> str:
    mean, low, high = mean_ci(np.array(values, dtype=float))
    if mean is None:
        return "n/a"
    return f"{mean:.3f}" if low is None else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latents-per-sae", type=int, default=8)
    args = parser.parse_args()
    config = load_settings()
    chosen = config.subject_scorers
    store = open_store(config)
    saes = [r["sae"] for r in store.query("SELECT DISTINCT sae FROM explanations ORDER BY sae").to_pylist()
            if r["sae"] in {c for c in lookup_all(config)}]
    began = time.perf_counter()
    subject = load_subject_model(config.model.name, config.models_dir, config.model.device, config.model.dtype)
    print(f"subject model {config.model.name} loaded in {time.perf_counter() - began:.1f} s; torch threads "
          f"{torch.get_num_threads()}")
    values: dict[tuple[str, str, str], list[float]] = {}
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    n_latents = 0
    kls = []
    for sae in saes:
        explained, pool = newest_explanations(store, sae)
        explained = dict(sorted(explained.items())[: args.latents_per_sae])
        examples = rows_to_latent_examples(store.query(
            "SELECT * FROM examples WHERE sae = ? AND list_contains(?, latent)", [sae, list(explained)]).to_pylist())
        tasks = scoring_tasks(sae, explained, examples, pool, config.sampling.negatives, chosen.seed)
        coder = load_coder(lookup(config, [sae])[sae].source, base_model=subject.body, device=subject.device)
        result = score_with_language_models(subject, subject, coder, sae, tasks, chosen)
        n_latents += len({t.item.latent for t in tasks})
        for scorer, spent in result.seconds.items():
            seconds[scorer] = seconds.get(scorer, 0.0) + spent
            cpu_seconds[scorer] = cpu_seconds.get(scorer, 0.0) + result.cpu_seconds[scorer]
        for scorer, pairs in result.scored.items():
            for task, score in pairs:
                metrics = {"auc": score.metrics.auc if score.metrics else None, "log_prob_gain": score.log_prob_gain}
                for metric, value in metrics.items():
                    if value is not None:
                        values.setdefault((scorer, metric, task.control), []).append(value)
        kls += [s.kl for s in result.steered]
        for steered in result.steered[:2]:
            if steered.control == OWN:
                print(f"{sae} latent {steered.latent}: strength {steered.strength:.1f} kl {steered.kl:.3f}; "
                      f"promoted {[t for t, _ in steered.promoted[:5]]}; steered {steered.steered[0]!r} "
                      f"clean {steered.clean[0]!r}")
    for (scorer, metric, control), found in sorted(values.items()):
        print(f"{scorer:12} {metric:13} {control:13} {interval(found):28} latents={len(found)}")
    print(f"subject_scorers_latents={n_latents}")
    print(f"intervention_mean_kl={np.mean(kls):.3f}" if kls else "intervention_mean_kl=n/a")
    for scorer, spent in seconds.items():
        print(f"{scorer}_wall_seconds_per_latent={spent / max(n_latents, 1):.2f}")
        print(f"{scorer}_cpu_seconds_per_latent={cpu_seconds[scorer] / max(n_latents, 1):.2f}")
    for scorer in ("surprisal", "intervention"):
        for metric in ("auc", "log_prob_gain"):
            own = values.get((scorer, metric, OWN))
            if own:
                print(f"{scorer}_{metric}_own={np.mean(own):.3f}")
                for control in ("shuffled", "random_latent"):
                    if (scorer, metric, control) in values:
                        print(f"{scorer}_{metric}_{control}={np.mean(values[(scorer, metric, control)]):.3f}")


def lookup_all(config) -> list[str]:
    from autointerp_dagster.core.coders import registered_coders

    return list(registered_coders(config))


if __name__ == "__main__":
    main()
