"""Software-defined assets, in pipeline order."""

import warnings

from dagster import BetaWarning

# The multi-partition mappings and backfill policies used here are beta in Dagster 1.13; we chose them knowingly,
# and a screen of warnings at every import (the CLI, the UI's code server) tells a user nothing they can act on.
warnings.filterwarnings("ignore", category=BetaWarning)

from .activation_cache import activation_cache
from .coder_comparison import coder_comparison
from .corpus import corpus
from .embedded_saes import embedded_saes
from .examples import examples
from .explanations import explanations
from .intruder_scores import intruder_scores
from .latent_pages import latent_pages
from .latent_stats import latent_stats
from .scores import scores
from .similarity import sae_similarity
from .simulation_scores import simulation_scores
from .subject_model_scores import subject_model_scores
from .summary import sae_summary

ASSETS = [corpus, embedded_saes, activation_cache, latent_stats, examples, explanations, scores, subject_model_scores,
          simulation_scores, intruder_scores, sae_summary, latent_pages, coder_comparison, sae_similarity]

__all__ = ["ASSETS", "activation_cache", "coder_comparison", "corpus", "embedded_saes", "examples", "explanations",
           "intruder_scores", "latent_pages", "latent_stats", "sae_similarity", "sae_summary", "scores",
           "simulation_scores", "subject_model_scores"]
