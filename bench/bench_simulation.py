"""Cost and outcome of simulation scoring on real latents with the configured judge (default: the embedded
Qwen2.5-Coder 1.5B, in process): prompt tokens, LLM requests and seconds per latent, and the correlations of
the own and the shuffled explanation.

Reads explanations and example sets from $AUTOINTERP_HOME's results store (run `make run` first; use a copy of
the home, since the LLM cache and call log are written to it). Judged windows per class follow the settings
(`judge_examples`: 5 a class for the local judge); the paper-sized cost (50 + 50 windows) is extrapolated
from the measured tokens per window.

    AUTOINTERP_HOME=/path/to/home-copy .venv/bin/python bench/bench_simulation.py --latents 2 [--mode chat]

`--mode chat` measures the chat form (the judge writes every token's value) instead of the all-at-once one,
and also prints generated tokens per window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.assets.slices import read_example_sets, read_explained  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.explain.explainers import explainer_id  # noqa: E402
from autointerp_dagster.core.llm import ChatRequest, build_backend, build_client  # noqa: E402
from autointerp_dagster.core.scorers.runs import judged_subset, scoring_tasks  # noqa: E402
from autointerp_dagster.core.scorers.simulation import simulation_scores  # noqa: E402
from autointerp_dagster.core.store import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", default=None, help="SAE key (default: the first with explanations)")
    parser.add_argument("--latents", type=int, default=1, help="explained latents to simulate")
    parser.add_argument("--windows", type=int, default=None, help="judged windows a class (default: the settings')")
    parser.add_argument("--mode", choices=("all_at_once", "chat"), default=None, help="default: the settings'")
    args = parser.parse_args()
    config = load_settings()
    store = open_store(config)
    explainer = explainer_id(config.explainer, config.steering)
    sae = args.sae or store.query("SELECT min(sae) AS sae FROM explanations WHERE explainer = ?",
                                  [explainer]).column("sae")[0].as_py()
    explained, pool = read_explained(store, sae, 0, 1 << 30, explainer, config.llm.label)
    chosen = dict(sorted(explained.items())[: args.latents])
    sets = read_example_sets(store, sae, 0, 1 << 30)
    tasks = scoring_tasks(sae, chosen, sets, pool, config.sampling.negatives, config.scoring.seed)
    per_class = args.windows or config.scoring.examples_per_class
    items = judged_subset(tasks, per_class)
    mode = args.mode or config.simulation.mode
    client = build_client(config.llm.model_copy(update={"use_cache": False}),
                          build_backend(config.llm, config.models_dir), store)
    if mode == "chat":  # loads the model outside the timing
        client.complete([ChatRequest([{"role": "user", "content": "warm up"}], max_tokens=1)])
    else:
        client.backend.prompt_logprobs(_warm_up())
    started = time.perf_counter()
    scores = simulation_scores(client, items, config.simulation.max_level, config.scoring.seed, mode=mode)
    seconds = time.perf_counter() - started
    generated = store.query("SELECT sum(tokens_out) AS n FROM llm_calls WHERE purpose = 'simulation' AND "
                            "list_contains(?, call_id)", [[c for s in scores for c in s.call_ids]]).column("n")[0]
    windows = sum(s.n_examples for s in scores)
    tokens = sum(s.prompt_tokens for s in scores)
    for task, score in zip(tasks, scores):
        print(f"latent {task.item.latent} {task.control:8} status={score.status} correlation={score.correlation} "
              f"[{score.correlation_ci_low}, {score.correlation_ci_high}] windows={score.n_examples} "
              f"failed={score.n_failed} tokens={score.prompt_tokens} :: {task.item.explanation[:70]!r}")
    n = len(chosen)
    print(f"sae={sae}")
    print(f"judge={config.llm.label}")
    print(f"mode={mode}")
    print(f"latents={n}")
    print(f"windows_per_class={per_class}")
    print(f"llm_requests_per_latent={windows / n:.0f}")
    print(f"prompt_tokens_per_window={tokens / windows:.0f}")
    print(f"prompt_tokens_per_latent={tokens / n:.0f}")
    print(f"prompt_tokens_per_latent_50_50_own_and_control={tokens / windows * 200:.0f}")
    print(f"generated_tokens_per_window={(generated.as_py() or 0) / windows:.0f}")
    print(f"seconds_per_latent={seconds / n:.1f}")
    print(f"seconds_per_request={seconds / windows:.2f}")


def _warm_up():
    from autointerp_dagster.core.llm.types import PromptScoreRequest

    return PromptScoreRequest("warm up\t?", (8,), ("0",))


if __name__ == "__main__":
    main()
