"""Every results table's schema, in one place: writers cast to it, so a table never takes the shape of
whatever its first write happened to hold, and readers know what they get.

Keys: each row is keyed by everything that made it (sae, latent, and for explanations and scores the
explainer, the models and the explanation), so a re-run replaces rows and results of other models coexist.
"""

from __future__ import annotations

import pyarrow as pa

_TS = pa.timestamp("us")
_TS_UTC = pa.timestamp("us", tz="UTC")

CORPORA = pa.schema([
    ("corpus_id", pa.string()), ("path", pa.string()), ("n_rows", pa.int64()), ("ctx_len", pa.int64()),
    ("n_tokens", pa.int64()), ("first_position", pa.int64()), ("n_documents", pa.int64()),
    ("tokenizer", pa.string()), ("source", pa.string()),
])
ACTIVATION_CACHES = pa.schema([
    ("sae", pa.string()), ("model", pa.string()), ("hookpoint", pa.string()), ("format", pa.string()),
    ("source", pa.string()), ("fingerprint", pa.string()), ("d_in", pa.int64()), ("n_latents", pa.int64()),
    ("capture_module", pa.string()), ("capture", pa.string()), ("is_transcoder", pa.bool_()),
    ("corpus_id", pa.string()), ("cache_path", pa.string()), ("encoded_tokens", pa.int64()), ("nnz", pa.int64()),
    ("dead_fraction", pa.float64()), ("tokens_per_s", pa.float64()), ("bytes_on_disk", pa.int64()),
])
LATENT_STATS = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("n_activations", pa.int64()), ("frequency", pa.float64()),
    ("max_activation", pa.float32()), ("mean_activation", pa.float32()),
])
LATENT_SAMPLING = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("status", pa.string()), ("reason", pa.string()),
    ("n_activating_windows", pa.int32()), ("max_activation", pa.float32()),
])
EXAMPLES = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("set", pa.string()), ("idx", pa.int32()), ("row", pa.int32()),
    ("start", pa.int32()), ("quantile", pa.int32()), ("tokens", pa.list_(pa.string())),
    ("activations", pa.list_(pa.float32())),  # cache values are float16/float32: stored exactly
    ("normalized", pa.list_(pa.int8())),
])
EXPLANATIONS = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("explainer", pa.string()), ("explanation_id", pa.string()),
    ("status", pa.string()), ("explanation", pa.string()), ("error", pa.string()), ("raw_answer", pa.string()),
    ("backend", pa.string()), ("model", pa.string()), ("call_ids", pa.list_(pa.string())),
    ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("created_at", _TS),
])
# Best-of-k (explainer.best_of > 1): every draw of a latent's explanation, with its MiniLM AUC on the held-out
# windows it was chosen on (choice_auc) and on the other half of them (heldout_auc); the chosen one is also the
# latent's row in `explanations`. Keyed by (sae, latent, explainer, backend, model, draw).
EXPLANATION_DRAWS = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("explainer", pa.string()), ("backend", pa.string()),
    ("model", pa.string()), ("draw", pa.int32()), ("status", pa.string()), ("explanation", pa.string()),
    ("error", pa.string()), ("choice_auc", pa.float64()), ("heldout_auc", pa.float64()), ("chosen", pa.bool_()),
    ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
])
SCORE_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc")
# A score row is keyed by (sae, latent, scorer, explanation_id, judge, scorer_config, control): the explanation
# id covers the explainer, its model and the text; `control` is 'none' for the latent's own explanation and
# 'shuffled' for the paper's random-explanation control (another latent's explanation, `control_latent`).
SCORES = pa.schema(
    [("sae", pa.string()), ("latent", pa.int32()), ("scorer", pa.string()), ("explanation_id", pa.string()),
     ("explainer", pa.string()), ("explainer_model", pa.string()), ("mode", pa.string()), ("judge", pa.string()),
     ("scorer_config", pa.string()), ("control", pa.string()), ("control_latent", pa.int32()),
     ("status", pa.string()), ("error", pa.string())]
    + [(m, pa.float64()) for m in SCORE_METRICS]
    + [("correlation", pa.float64())]  # simulation's metric, in [-1, 1]; its interval in correlation_ci_*
    + [("ci_low", pa.float64()), ("ci_high", pa.float64()), ("auc_ci_low", pa.float64()),
       ("auc_ci_high", pa.float64()), ("correlation_ci_low", pa.float64()), ("correlation_ci_high", pa.float64()),
       ("n_examples", pa.int32()), ("n_failed", pa.int32()),
       ("true_positive", pa.int32()), ("false_positive", pa.int32()), ("true_negative", pa.int32()),
       ("false_negative", pa.int32()), ("call_ids", pa.list_(pa.string())), ("prompt_tokens", pa.int64()),
       ("completion_tokens", pa.int64()), ("created_at", _TS),
       # Effect-size scorers (intervention): mean log P(explanation | steered) - log P(explanation | clean), nats,
       # summed over the explanation's tokens, and per token (comparable between explanations of other lengths).
       ("log_prob_gain", pa.float64()), ("log_prob_gain_ci_low", pa.float64()), ("log_prob_gain_ci_high", pa.float64()),
       ("log_prob_gain_per_token", pa.float64())]
)
JUDGMENTS = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("scorer", pa.string()), ("explanation_id", pa.string()),
    ("judge", pa.string()), ("scorer_config", pa.string()), ("control", pa.string()),
    ("example_set", pa.string()), ("example_idx", pa.int32()), ("label", pa.int8()), ("prediction", pa.int8()),
    ("probability", pa.float64()), ("error", pa.string()),
])
LLM_RESPONSES = pa.schema([
    ("cache_key", pa.string()), ("model", pa.string()), ("response", pa.string()), ("created_at", _TS_UTC),
])
LLM_CALLS = pa.schema([
    ("call_id", pa.string()), ("backend", pa.string()), ("model", pa.string()), ("purpose", pa.string()),
    ("prompt_hash", pa.string()), ("tokens_in", pa.int32()), ("tokens_out", pa.int32()),
    ("latency_s", pa.float64()), ("attempts", pa.int32()), ("status", pa.string()), ("error", pa.string()),
    ("created_at", _TS_UTC),
])
# A latent's digest (core/digest.py): kind 'top_activating' (value: windows whose peak is the token),
# 'promoted' (value: the logit its decoder direction gives the token) or, for the output-side explainer,
# 'steered:<settings id>' (value: the mean probability gain under steering), rank 0 first.
LATENT_DIGEST = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("kind", pa.string()), ("rank", pa.int32()), ("token", pa.string()),
    ("value", pa.float64()),
])
# The LLM tables are appended to (INSERT OR IGNORE on their keys) rather than replaced by slice.
LLM_DDL = """
CREATE TABLE IF NOT EXISTS llm_responses (
    cache_key VARCHAR PRIMARY KEY, model VARCHAR, response JSON, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS llm_calls (
    call_id VARCHAR PRIMARY KEY, backend VARCHAR, model VARCHAR, purpose VARCHAR, prompt_hash VARCHAR,
    tokens_in INTEGER, tokens_out INTEGER, latency_s DOUBLE, attempts INTEGER, status VARCHAR, error VARCHAR,
    created_at TIMESTAMPTZ);
"""

TABLES: dict[str, pa.Schema] = {
    "corpora": CORPORA,
    "activation_caches": ACTIVATION_CACHES,
    "latent_stats": LATENT_STATS,
    "latent_sampling": LATENT_SAMPLING,
    "examples": EXAMPLES,
    "explanations": EXPLANATIONS,
    "explanation_draws": EXPLANATION_DRAWS,
    "scores": SCORES,
    "judgments": JUDGMENTS,
    "latent_digest": LATENT_DIGEST,
}

IN_LATENT_RANGE = "sae = ? AND latent >= ? AND latent < ?"  # the slice a (sae, latent range) partition owns

# Cross-coder similarity (core/similarity). Latents of two coders of one model are matched one-to-one by decoder
# cosine (`method`: 'hungarian' exact, or 'sparse_topk' exact over top-k candidates); each matched pair carries
# every similarity (activation_correlation: Pearson over the shared cached tokens; explanation_similarity: MiniLM
# cosine of the two explanations, null unless both are explained). sae_a < sae_b.
LATENT_MATCHES = pa.schema([
    ("sae_a", pa.string()), ("latent_a", pa.int32()), ("sae_b", pa.string()), ("latent_b", pa.int32()),
    ("method", pa.string()), ("decoder_cosine", pa.float32()), ("activation_correlation", pa.float32()),
    ("explanation_similarity", pa.float32()),
])
# One row per (sae_a, sae_b, method, control): `method` is the similarity averaged over matched pairs
# (decoder_cosine, activation_correlation, explanation_similarity); `control` is 'none' for the pair itself,
# 'self' (a coder matched with a copy of itself, sae_b = sae_a), 'random' (with a random Gaussian decoder of its
# shape, sae_b = sae_a) or 'random_pairs' (the same pair's latents paired at random instead of matched).
SAE_SIMILARITY = pa.schema([
    ("sae_a", pa.string()), ("sae_b", pa.string()), ("method", pa.string()), ("control", pa.string()),
    ("matching", pa.string()), ("n_latents_a", pa.int64()), ("n_latents_b", pa.int64()), ("n_pairs", pa.int64()),
    ("mean", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()), ("threshold", pa.float64()),
    ("share_above", pa.float64()), ("seconds", pa.float64()),
])
TABLES["latent_matches"] = LATENT_MATCHES
TABLES["sae_similarity"] = SAE_SIMILARITY
# One row per latent steered for the intervention scorer (the latent itself, control 'none', or its random-latent
# control): the strength that hit the KL target, the completions, and the tokens whose next-token probability rose
# most under steering (on the scorer's held-out windows; the output-side explainer steers its own windows in
# `examples`: table latent_digest, kind 'steered').
STEERING = pa.schema([
    ("sae", pa.string()), ("latent", pa.int32()), ("steered_latent", pa.int32()), ("control", pa.string()),
    ("scorer_config", pa.string()), ("module", pa.string()), ("strength", pa.float64()), ("kl", pa.float64()),
    ("kl_target", pa.float64()), ("search_steps", pa.int32()), ("prompt_sets", pa.list_(pa.string())),
    ("prompt_idx", pa.list_(pa.int32())), ("clean", pa.list_(pa.string())), ("steered", pa.list_(pa.string())),
    ("promoted_tokens", pa.list_(pa.string())), ("promoted_gains", pa.list_(pa.float64())),
])
TABLES["steering"] = STEERING
