"""The pipeline as Dagster jobs, one a stage (stages.py): the UI launches them, the sensor requests them,
`autointerp run` runs them.

A job's assets must share one partitions definition, so the pipeline is seven jobs in order:
inputs (corpus, embedded SAEs), caches (per coder; one run over a stretch of coders makes one
forward pass), explanations (per coder and latent range: statistics, examples, explanations),
scores (per coder and latent range, once every range is explained: the shuffled-explanation
control borrows other ranges' explanations), summaries with the latent pages (per coder), cross-coder
similarity (per coder: its latents matched with every other coder of the model, once all are explained) and
the coders side by side (one run).
"""

from dagster import define_asset_job

from .assets import (
                     activation_cache,
                     coder_comparison,
                     corpus,
                     embedded_saes,
                     examples,
                     explanations,
                     intruder_scores,
                     latent_pages,
                     latent_stats,
                     sae_similarity,
                     sae_summary,
                     scores,
                     simulation_scores,
                     subject_model_scores,
)
from .partitions import sae_latent_partitions, sae_partitions

inputs_job = define_asset_job("inputs_job", selection=[corpus, embedded_saes],
                              description="Tokenize the corpus; train the embedded default's SAEs.")
cache_job = define_asset_job("cache_job", selection=[activation_cache], partitions_def=sae_partitions,
                             description="Cache the sparse activations of a stretch of coders in one forward pass.")
explain_job = define_asset_job(
    "explain_job", selection=[latent_stats, examples, explanations], partitions_def=sae_latent_partitions,
    description="Statistics, examples and explanations of one coder's latent range.")
score_job = define_asset_job(
    "score_job", selection=[scores, subject_model_scores, simulation_scores, intruder_scores],
    partitions_def=sae_latent_partitions,
    description="Scores of one coder's latent range (the judge's, the subject model's surprisal and intervention, "
    "simulation with simulation.enabled), beside shuffled explanations drawn from all its ranges; intruder "
    "detection, which needs no explanation.")
summary_job = define_asset_job("summary_job", selection=[sae_summary, latent_pages], partitions_def=sae_partitions,
                               description="The per-coder summary and latent pages (HTML).")

similarity_job = define_asset_job(
    "similarity_job", selection=[sae_similarity], partitions_def=sae_partitions,
    description="A coder's latents matched with every other coder of its model, with controls.")

coder_comparison_job = define_asset_job("coder_comparison_job", selection=[coder_comparison],
                                description="Every coder of the model side by side (e.g. SAEs against neurons).")

JOBS = [inputs_job, cache_job, explain_job, score_job, summary_job, similarity_job, coder_comparison_job]
