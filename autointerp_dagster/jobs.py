"""The pipeline as Dagster jobs: the UI launches them, the sensor requests them, `autointerp run` runs them.

A job's assets must share one partitions definition, so the pipeline is five jobs in order:
inputs (corpus, embedded SAEs), caches (per coder; one run over a stretch of coders makes one
forward pass), explanations (per coder and latent range: statistics, examples, explanations),
scores (per coder and latent range, once every range is explained: the shuffled-explanation
control borrows other ranges' explanations), and summaries (per coder).
"""

from dagster import define_asset_job

from .assets import (activation_cache, corpus, embedded_saes, examples, explanations, latent_stats, sae_summary, scores,
                     subject_model_scores)
from .partitions import sae_latent_partitions, sae_partitions

inputs_job = define_asset_job("inputs_job", selection=[corpus, embedded_saes],
                              description="Tokenize the corpus; train the embedded default's SAEs.")
cache_job = define_asset_job("cache_job", selection=[activation_cache], partitions_def=sae_partitions,
                             description="Cache the sparse activations of a stretch of coders in one forward pass.")
explain_job = define_asset_job(
    "explain_job", selection=[latent_stats, examples, explanations], partitions_def=sae_latent_partitions,
    description="Statistics, examples and explanations of one coder's latent range.")
score_job = define_asset_job(
    "score_job", selection=[scores, subject_model_scores], partitions_def=sae_latent_partitions,
    description="Scores of one coder's latent range (the judge's, then the subject model's surprisal and "
    "intervention), beside shuffled explanations drawn from all its ranges.")
summary_job = define_asset_job("summary_job", selection=[sae_summary], partitions_def=sae_partitions,
                               description="The per-SAE summary.")

JOBS = [inputs_job, cache_job, explain_job, score_job, summary_job]
