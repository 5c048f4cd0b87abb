"""Explanation similarity of matched latents on a finished run, where the run itself explained too few latents for
any matched pair to have both explanations (the default explains 8 a coder).

For two coders with stored matches (`latent_matches`), it takes every latent of either that the run explained,
samples and explains its matched partner in the other coder the same way the pipeline does (its examples and
digest, the configured explainer and LLM), and prints the MiniLM cosine of the two explanations for the matched
pairs against the same explanations paired at random (the `random_pairs` control of `sae_similarity`), with
95% bootstrap intervals over pairs, and their difference paired by the first coder's latent. Nothing is written
but the LLM cache and call log: use a copy of the home.

    AUTOINTERP_HOME=/path/to/home-copy .venv/bin/python bench/bench_matched_explanations.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.cache import ActivationCache  # noqa: E402
from autointerp_dagster.core.coders import decoder_directions, lookup  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.corpus import load_corpus_info, read_tokens  # noqa: E402
from autointerp_dagster.core.explain.digest import LatentDigest, promoted_tokens  # noqa: E402
from autointerp_dagster.core.explain.explainers import ExplainItem, explain_latents, explainer_id  # noqa: E402
from autointerp_dagster.core.llm import build_backend, build_client  # noqa: E402
from autointerp_dagster.core.models.subject import load_subject_model  # noqa: E402
from autointerp_dagster.core.reporting.metrics import mean_ci  # noqa: E402
from autointerp_dagster.core.sampling import evenly_spaced, token_decoder  # noqa: E402
from autointerp_dagster.core.sampling.build import build_examples  # noqa: E402
from autointerp_dagster.core.similarity.explanations import explained_texts, explanation_cosines  # noqa: E402
from autointerp_dagster.core.store import open_store  # noqa: E402


def explain_partners(config, store, model, client, sae: str, latents: list[int]) -> dict[int, str]:
    """Explanations of `latents` of `sae`, made as the pipeline makes them (examples, digest, explainer)."""
    stored = store.query("SELECT c.cache_path, p.path AS corpus_path FROM activation_caches c JOIN corpora p "
                         "USING (corpus_id) WHERE c.sae = ?", [sae]).to_pylist()[0]
    tokens = read_tokens(load_corpus_info(stored["corpus_path"]))
    sets = [le for le in build_examples(ActivationCache(stored["cache_path"]), tokens,
                                        token_decoder(model.tokenizer), latents, sae, config.sampling)
            if le.status == "ok"]
    directions = decoder_directions(lookup(config, [sae])[sae].source, model.body)[[le.latent for le in sets]]
    promoted = promoted_tokens(model, directions, config.sampling.promoted_tokens, np.bincount(tokens.ravel()))
    shown = config.explainer.examples
    items = [ExplainItem(le.latent, evenly_spaced(le.train, shown, key=lambda e: e.quantile), (),
                         LatentDigest(le.latent, tuple(le.top_tokens), tuple(p))) for le, p in zip(sets, promoted)]
    return {r.latent: r.explanation for r in explain_latents(client, items, config.explainer) if r.ok}


def main() -> None:
    config = load_settings()
    store = open_store(config)
    explainer = explainer_id(config.explainer, config.steering)
    [pair] = store.query("SELECT DISTINCT sae_a, sae_b FROM latent_matches ORDER BY ALL LIMIT 1").to_pylist()
    a, b = pair["sae_a"], pair["sae_b"]
    matches = store.query("SELECT latent_a, latent_b, decoder_cosine, activation_correlation FROM latent_matches "
                          "WHERE sae_a = ? AND sae_b = ?", [a, b]).to_pylist()
    texts = {sae: explained_texts(store, sae, explainer, config.llm.label) for sae in (a, b)}
    pairs = [m for m in matches if m["latent_a"] in texts[a] or m["latent_b"] in texts[b]]
    model = load_subject_model(config.model.name, config.models_dir, config.model.device, config.model.dtype)
    client = build_client(config.llm, build_backend(config.llm, config.models_dir), store)
    for sae, side in ((b, "latent_b"), (a, "latent_a")):
        missing = sorted({m[side] for m in pairs if m[side] not in texts[sae]})
        texts[sae] |= explain_partners(config, store, model, client, sae, missing)
    both = [m for m in pairs if m["latent_a"] in texts[a] and m["latent_b"] in texts[b]]
    latent_a = np.array([m["latent_a"] for m in both])
    latent_b = np.array([m["latent_b"] for m in both])
    matched = explanation_cosines(texts[a], texts[b], latent_a, latent_b)
    shuffled = np.random.default_rng(0).permutation(len(both))
    control = explanation_cosines(texts[a], texts[b], latent_a, latent_b[shuffled])
    print(f"{a} against {b}: {len(both)} matched pairs with both explained ({len(pairs)} with either)")
    for m, cosine in zip(both, matched):
        print(f"  {m['latent_a']:5d} ~ {m['latent_b']:5d}  decoder {m['decoder_cosine']:.3f}  activations "
              f"{m['activation_correlation'] if m['activation_correlation'] is not None else float('nan'):.3f}  "
              f"explanations {cosine:.3f}\n      {texts[a][m['latent_a']][:90]!r}"
              f"\n      {texts[b][m['latent_b']][:90]!r}")
    for name, values in (("matched", matched), ("random pairs", control)):
        mean, low, high = mean_ci(values, seed=0)
        print(f"explanation_similarity {name}: {mean:.3f} [{low:.3f}, {high:.3f}] over {len(values)} pairs")
    mean, low, high = mean_ci(matched - control, seed=0)
    print(f"explanation_similarity matched minus random, paired by latent_a: {mean:+.3f} [{low:+.3f}, {high:+.3f}]")
    for name, key in (("decoder cosine", "decoder_cosine"), ("activation correlation", "activation_correlation")):
        values = [m[key] for m in both if m[key] is not None]
        print(f"{name} of these pairs: {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
