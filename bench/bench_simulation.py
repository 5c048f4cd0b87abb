"""Cost and outcome of simulation scoring on real latents with the configured judge (default: the embedded
Qwen2.5-Coder 1.5B, in process): prompt tokens, LLM requests and seconds per latent, and the correlations of
the own and the shuffled explanation.

Reads explanations and example sets from $AUTOINTERP_HOME's results store (run `make run` first; use a copy of
the home, since the LLM cache and call log are written to it). Judged windows per class follow the settings
(`judge_examples`: 5 a class for the local judge); the paper-sized cost (50 + 50 windows) is extrapolated
from the measured tokens per window.

    AUTOINTERP_HOME=/path/to/home-copy .venv/bin/python bench/bench_simulation.py --latents 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.assets.slices import read_example_sets, read_explained  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.explainers import explainer_id  # noqa: E402
from autointerp_dagster.core.llm import build_backend, build_client  # noqa: E402
from autointerp_dagster.core.scorers.runs import judged_subset, scoring_tasks  # noqa: E402
from autointerp_dagster.core.scorers.simulation import simulation_scores  # noqa: E402
from autointerp_dagster.core.store import ResultsStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", default=None, help="SAE key (default: the first with explanations)")
    parser.add_argument("--latents", type=int, default=1, help="explained latents to simulate")
    args = parser.parse_args()
    config = load_settings()
    store = ResultsStore(config.db_path)
    explainer = explainer_id(config.explainer_config())
    sae = args.sae or store.query("SELECT min(sae) AS sae FROM explanations WHERE explainer = ?",
                                  [explainer]).column("sae")[0].as_py()
    explained, pool = read_explained(store, sae, 0, 1 << 30, explainer, config.llm.label)
    chosen = dict(sorted(explained.items())[: args.latents])
    sets = read_example_sets(store, sae, 0, 1 << 30)
    tasks = scoring_tasks(sae, chosen, sets, pool, config.negatives, config.scoring.seed)
    _, per_class = config.example_limits()
    items = judged_subset(tasks, per_class)
    client = build_client(config.llm.model_copy(update={"use_cache": False}),
                          build_backend(config.llm, config.models_dir), store)
    client.backend.prompt_logprobs(_warm_up())  # loads the model outside the timing
    started = time.perf_counter()
    scores = simulation_scores(client, items, config.simulation.max_level, config.scoring.seed)
    seconds = time.perf_counter() - started
    windows = sum(s.n_examples for s in scores)
    tokens = sum(s.prompt_tokens for s in scores)
    for task, score in zip(tasks, scores):
        print(f"latent {task.item.latent} {task.control:8} status={score.status} correlation={score.correlation} "
              f"[{score.correlation_ci_low}, {score.correlation_ci_high}] windows={score.n_examples} "
              f"failed={score.n_failed} tokens={score.prompt_tokens} :: {task.item.explanation[:70]!r}")
    n = len(chosen)
    print(f"sae={sae}")
    print(f"judge={config.llm.label}")
    print(f"latents={n}")
    print(f"windows_per_class={per_class}")
    print(f"llm_requests_per_latent={windows / n:.0f}")
    print(f"prompt_tokens_per_window={tokens / windows:.0f}")
    print(f"prompt_tokens_per_latent={tokens / n:.0f}")
    print(f"prompt_tokens_per_latent_50_50_own_and_control={tokens / windows * 200:.0f}")
    print(f"seconds_per_latent={seconds / n:.1f}")
    print(f"seconds_per_request={seconds / windows:.2f}")


def _warm_up():
    from autointerp_dagster.core.llm.types import PromptScoreRequest

    return PromptScoreRequest("warm up\t?", (8,), ("0",))


if __name__ == "__main__":
    main()
