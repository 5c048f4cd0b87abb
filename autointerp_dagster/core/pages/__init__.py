"""Latent pages: self-contained HTML pages per coder (an index of explained latents and a page per latent) and
exports others can load (a Parquet dataset with a card, Neuronpedia's JSON layout)."""

from .exports import export_neuronpedia, export_parquet
from .gather import LatentPage, SaeIndex, gather_index, iter_latent_pages, known_saes
from .render import PagesSummary, pages_folder, write_pages, write_pages_home
from .serve import pages_server

__all__ = ["LatentPage", "PagesSummary", "SaeIndex", "export_neuronpedia", "export_parquet", "gather_index",
           "iter_latent_pages", "known_saes", "pages_folder", "pages_server", "write_pages", "write_pages_home"]
