"""Software-defined assets, in pipeline order."""

from .activation_cache import activation_cache
from .corpus import corpus
from .embedded_saes import embedded_saes
from .latent_stats import latent_stats

__all__ = ["activation_cache", "corpus", "embedded_saes", "latent_stats"]
