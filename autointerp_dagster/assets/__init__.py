"""Software-defined assets, in pipeline order."""

from .activation_cache import activation_cache
from .corpus import corpus
from .embedded_saes import embedded_saes
from .examples import examples
from .explanations import explanations
from .latent_stats import latent_stats
from .scores import scores
from .subject_model_scores import subject_model_scores
from .summary import sae_summary

ASSETS = [corpus, embedded_saes, activation_cache, latent_stats, examples, explanations, scores, subject_model_scores,
          sae_summary]

__all__ = ["ASSETS", "activation_cache", "corpus", "embedded_saes", "examples", "explanations", "latent_stats",
           "sae_summary", "scores", "subject_model_scores"]
