"""Explanation quality from enough latents: own - shuffled, LLM - baseline and trained - random per coder and
scorer, with 95% intervals, over at least 64 latents a coder at two sampling seeds.

After `make run` (it reuses the embedded default's corpus, coders, models and caches): for each seed, a copy of
the project home runs `autointerp run --stage cache --stage explain --stage score` with `seed` set (which latents
are drawn and their example sets), `--latents` latents a coder (`sampling.latents_per_range`), and
`coders.random_twins` (every coder's random-weight twin, cached, explained and scored alike). The judge is
whatever the settings say (AUTOINTERP_CONFIG and AUTOINTERP_* variables): the embedded judge by default (hours
of CPU at 64 latents), or a server. Per coder and scorer, over the latents of both seeds together:

    quality <sae> <scorer> latents=<n> own_minus_shuffled=<d> [<lo>, <hi>] llm_minus_baseline=<d> [<lo>, <hi>]
        trained_minus_random=<d> [<lo>, <hi>]

own - shuffled and LLM - baseline are paired over latents (bootstrap-t intervals); trained - random compares the
coder's latents with its twin's (Welch interval). A value the results cannot give (e.g. the baseline is not
judged by fuzzing) is `n/a`. With `--best-of K` the LLM's explanations are best-of-K (`explainer.best_of`), and
per coder a line gives the chosen draw against the first on the held-out windows the choice did not see:

    best_of <sae> k=<K> latents=<n> later_won=<m> chosen_minus_first=<d> [<lo>, <hi>]

    .venv/bin/python bench/bench_quality.py [--latents 64] [--seeds 0 1] [--best-of 4]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import ttest_ind

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from bench_scale import copied_home  # noqa: E402

from autointerp_dagster.core.coders.formats.random_twin import RANDOM_PREFIX, twin_key  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.reporting.best_of import chosen_and_first  # noqa: E402
from autointerp_dagster.core.reporting.metrics import mean_ci, metric_bounds  # noqa: E402
from autointerp_dagster.core.store import ResultsStore  # noqa: E402

METRICS = {"detection": "auc", "fuzzing": "auc", "embedding": "auc", "surprisal": "auc",
           "intervention": "log_prob_gain_per_token", "intruder": "accuracy"}
BASELINE_MODEL = "none:top-tokens"


def run_seed(home: Path, seed: int, per_range: int, best_of: int, tmp: Path) -> tuple[list[dict], list[dict]]:
    """One seed's score rows (own and shuffled, LLM and baseline, coders and twins) and best-of-k draws, tagged
    with the seed."""
    copy, env = copied_home(home, tmp)
    env.update({"AUTOINTERP_SEED": str(seed), "AUTOINTERP_SAMPLING_LATENTS_PER_RANGE": str(per_range),
                "AUTOINTERP_CODERS_RANDOM_TWINS": "true", "AUTOINTERP_EXPLAINER_BEST_OF": str(best_of)})
    autointerp = Path(sys.executable).with_name("autointerp")
    done = subprocess.run([str(autointerp), "run", "--stage", "cache", "--stage", "explain", "--stage", "score"],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}: autointerp run failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    columns = ", ".join(sorted(set(METRICS.values())))
    store = ResultsStore(copy / "autointerp.duckdb")
    rows = store.query(f"SELECT sae, latent, scorer, explainer_model, judge, scorer_config, control, {columns} "
                       "FROM scores WHERE status = 'ok'").to_pylist()
    draws = store.query("SELECT sae, latent, draw, chosen, heldout_auc FROM explanation_draws").to_pylist() \
        if best_of > 1 else []
    return [{**r, "seed": seed} for r in rows], [{**d, "seed": seed} for d in draws]


def interval(values: np.ndarray, metric: str) -> str:
    mean, low, high = mean_ci(values, bounds=metric_bounds(metric, difference=True))
    return "n/a" if mean is None else f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]" if low is not None else f"{mean:+.3f}"


def welch(a: np.ndarray, b: np.ndarray, metric: str) -> str:
    if len(a) < 2 or len(b) < 2:
        return "n/a"
    found = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    low, high = float(found.low), float(found.high)
    if (bounds := metric_bounds(metric, difference=True)) is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return f"{a.mean() - b.mean():+.3f} [{low:+.3f}, {high:+.3f}]"


def quality_lines(rows: list[dict], llm_model: str) -> list[str]:
    """One line per trained coder and scorer (the module's docstring)."""
    lines = []
    for sae in sorted({r["sae"] for r in rows if not r["sae"].rsplit("/", 1)[-1].startswith(RANDOM_PREFIX)}):
        for scorer, metric in METRICS.items():
            mine = [r for r in rows if r["scorer"] == scorer and r[metric] is not None]
            values = _values_of(mine, metric, scorer == "intruder")
            own = values(sae, llm_model, "none")
            if not own:
                continue
            control = values(sae, llm_model, "mixed" if scorer == "intruder" else "shuffled")
            baseline = values(sae, BASELINE_MODEL, "none") if scorer != "intruder" else {}
            twin = values(twin_key(sae) or "", llm_model, "none")
            paired = sorted(set(own) & set(control))
            with_baseline = sorted(set(own) & set(baseline))
            lines.append(
                f"quality {sae} {scorer} latents={len(own)} "
                f"own_minus_shuffled={interval(np.array([own[k] - control[k] for k in paired]), metric)} "
                f"llm_minus_baseline={interval(np.array([own[k] - baseline[k] for k in with_baseline]), metric)} "
                f"trained_minus_random={welch(np.array(list(own.values())), np.array(list(twin.values())), metric)}")
    return lines


def best_of_lines(draws: list[dict]) -> list[str]:
    """Per coder: the chosen draw's held-out AUC minus the first draw's, paired over latents (both seeds)."""
    lines = []
    for sae in sorted({d["sae"] for d in draws}):
        mine = [d for d in draws if d["sae"] == sae]
        chosen, first, later_won = chosen_and_first(mine, key=lambda d: (d["seed"], d["latent"]))
        lines.append(f"best_of {sae} k={max(d['draw'] for d in mine) + 1} latents={len(chosen)} "
                     f"later_won={later_won} chosen_minus_first={interval(chosen - first, 'auc')}")
    return lines


def _values_of(rows: list[dict], metric: str, explanation_free: bool):
    """values(coder, explainer model, control): {(seed, latent, judge, scorer config): value} of `rows`."""
    def values(coder: str, model: str, control: str) -> dict[tuple, float]:
        return {(r["seed"], r["latent"], r["judge"], r["scorer_config"]): r[metric] for r in rows
                if r["sae"] == coder and r["control"] == control
                and (explanation_free or r["explainer_model"] == model)}
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", type=int, default=64, help="latents a coder (at least 64 for a claim)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--best-of", type=int, default=1, help="explanations drawn a latent (explainer.best_of)")
    args = parser.parse_args()
    settings = load_settings()
    if not (settings.home / "autointerp.duckdb").exists():
        raise SystemExit(f"no results in {settings.home}: run `make run` first")
    per_range = math.ceil(args.latents / settings.coders.latent_ranges)
    rows, draws = [], []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            seed_rows, seed_draws = run_seed(settings.home, seed, per_range, args.best_of, Path(tmp))
            rows, draws = rows + seed_rows, draws + seed_draws
    print(f"judge={settings.llm.label}")
    print(f"seeds={','.join(map(str, args.seeds))}")
    print(f"latents_per_coder_per_seed={per_range * settings.coders.latent_ranges}")
    for line in quality_lines(rows, settings.llm.label) + best_of_lines(draws):
        print(line)


if __name__ == "__main__":
    main()
