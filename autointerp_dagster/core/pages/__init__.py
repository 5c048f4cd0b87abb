"""Latent pages: a self-contained HTML report per SAE (an index of explained latents and a page per latent) and
exports others can load (a Parquet dataset with a card, Neuronpedia's JSON layout)."""

from .exports import export_neuronpedia, export_parquet
from .gather import LatentPage, SaeIndex, gather_index, iter_latent_pages, known_saes
from .render import ReportSummary, report_folder, write_report, write_reports_home
from .serve import reports_server

__all__ = ["LatentPage", "ReportSummary", "SaeIndex", "export_neuronpedia", "export_parquet", "gather_index",
           "iter_latent_pages", "known_saes", "report_folder", "reports_server", "write_report", "write_reports_home"]
